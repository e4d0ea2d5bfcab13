// SPDX-License-Identifier: MIT
'use strict';
// fixed_port.js - what each spec file of this suite (and of jest_suite,
// which runs it under jest) does: serves its own
// text on one hard-coded port (18300), waits until every spec of the run
// has tried to listen (so that the servers run at the same time), then
// fetches from the port and expects its own text. In one process group
// the servers clash ("EADDRINUSE"); under `portshim run`, each mocha
// worker (MOCHA_WORKER_ID) or jest worker (JEST_WORKER_ID) gets a group
// and a real port of its own.
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');

const PORT = 18300;
const SPECS = 4;
const dir = process.env.SUITE_OUT;
// mocha's hooks, or jest's.
const setUp = global.before || global.beforeAll;
const tearDown = global.after || global.afterAll;
const worker = process.env.MOCHA_WORKER_ID || process.env.JEST_WORKER_ID;

function note(name, text) {
    fs.writeFileSync(path.join(dir, name), text + '\n');
}

// Polls (every 50 ms, 20 s at most) until all specs tried to listen.
function barrier(done) {
    let left = 400;
    const tick = () => {
        const n = fs.readdirSync(dir).filter((f) => f.startsWith('tried-'))
            .length;
        if (n >= SPECS || --left === 0)
            done();
        else
            setTimeout(tick, 50);
    };
    tick();
}

exports.serve = function (id) {
    let server = null;

    setUp(function (done) {
        const s = http.createServer((req, res) => res.end('spec-' + id));
        s.once('error', (e) => {
            note('tried-' + id, 'error ' + e.code);
            done(e);
        });
        s.listen(PORT, '127.0.0.1', () => {
            server = s;
            note('tried-' + id, 'listening');
            note('worker-' + id, String(worker));
            done();
        });
    });

    tearDown(function (done) {
        if (server !== null)
            server.close(done);
        else
            done();
    });

    it('reaches its own server on port 18300', function (done) {
        if (this && this.timeout)
            this.timeout(30000);	// mocha's; jest's is the third argument
        barrier(() => {
            http.get('http://127.0.0.1:' + PORT + '/', (res) => {
                let body = '';
                res.on('data', (d) => body += d);
                res.on('end', () => {
                    try {
                        assert.strictEqual(body, 'spec-' + id);
                        done();
                    } catch (e) {
                        done(e);
                    }
                });
            }).on('error', done);
        });
    }, 30000);
};
