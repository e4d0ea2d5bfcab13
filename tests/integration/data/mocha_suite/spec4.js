// SPDX-License-Identifier: MIT
'use strict';
describe('spec 4', function () {
    require('./fixed_port').serve('4');
});
