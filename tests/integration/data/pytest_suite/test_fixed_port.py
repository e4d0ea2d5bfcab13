# SPDX-License-Identifier: MIT
"""A test suite written without parallel runs in mind: every test starts
its own HTTP server on the same hard-coded port, talks to it for a
moment, and stops it. Run one test at a time, it passes; run with
`pytest -n 4`, the workers' servers clash ("Address already in use");
run as `portshim run -- pytest -n 4`, each xdist worker gets a group of
its own and every test passes.

SUITE_PORT overrides the port (the test of the clash uses a free one);
SUITE_OUT, if set, is a folder where each test notes its worker and the
mapping file of its worker's group.
"""
import http.server
import os
import threading
import time
import urllib.request
import uuid

import pytest

PORT = int(os.environ.get("SUITE_PORT", "18080"))
HOLD = 0.5  # seconds each test keeps its server up


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.token.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def note(name):
    out = os.environ.get("SUITE_OUT")
    if not out:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    base = os.environ.get("PORTSHIM_MAP_FILE", "")
    mapping = ""
    if base.endswith(".map") and worker:
        try:
            with open(base[:-4] + "." + worker + ".map") as f:
                mapping = f.read()
        except OSError:
            pass
    with open(os.path.join(out, name + ".txt"), "w") as f:
        f.write(worker + "\n" + mapping)


@pytest.mark.parametrize("n", range(8))
def test_server_on_fixed_port(n):
    server = http.server.HTTPServer(("127.0.0.1", PORT), Handler)
    server.token = uuid.uuid4().hex
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        note("test%d" % n)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + HOLD
        while True:
            url = "http://127.0.0.1:%d/" % PORT
            with opener.open(url, timeout=10) as reply:
                assert reply.read().decode() == server.token
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
