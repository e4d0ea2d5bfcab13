// SPDX-License-Identifier: MIT
'use strict';
describe('spec 3 (jest)', function () {
    require('./fixed_port').serve('3');
});
