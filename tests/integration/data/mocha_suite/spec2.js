// SPDX-License-Identifier: MIT
'use strict';
describe('spec 2', function () {
    require('./fixed_port').serve('2');
});
