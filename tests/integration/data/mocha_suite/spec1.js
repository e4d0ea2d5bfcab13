// SPDX-License-Identifier: MIT
'use strict';
describe('spec 1', function () {
    require('./fixed_port').serve('1');
});
