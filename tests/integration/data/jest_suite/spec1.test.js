// SPDX-License-Identifier: MIT
'use strict';
describe('spec 1 (jest)', function () {
    require('./fixed_port').serve('1');
});
