// SPDX-License-Identifier: MIT
'use strict';
describe('spec 3', function () {
    require('./fixed_port').serve('3');
});
