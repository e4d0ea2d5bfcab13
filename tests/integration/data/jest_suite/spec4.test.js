// SPDX-License-Identifier: MIT
'use strict';
describe('spec 4 (jest)', function () {
    require('./fixed_port').serve('4');
});
