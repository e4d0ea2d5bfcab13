// SPDX-License-Identifier: MIT
'use strict';
describe('spec 2 (jest)', function () {
    require('./fixed_port').serve('2');
});
