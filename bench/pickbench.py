# SPDX-License-Identifier: MIT
"""pickbench.py - what "give me a port with a server bound to it" costs
with portpicker, measured inside one Python process so that interpreter
start-up is not counted.

    python3 bench/pickbench.py [-n N] [-t NAME] pick
        portpicker.pick_unused_port() + socket + bind + listen + close
    python3 bench/pickbench.py [-n N] [-t NAME] server ADDRESS
        the same through a portserver at ADDRESS ("@name" is abstract)
    python3 bench/pickbench.py [-n N] [-t NAME] bind0
        socket + bind(port 0) + listen + getsockname + close: the
        interpreter's own cost of the socket calls, for reference

Prints one line like bench/psbench: NAME MEDIAN_NS P10_NS P90_NS SAMPLES.
"""

import argparse
import socket
import sys
import time

import portpicker


def serve_on(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(16)
    finally:
        s.close()


def one_pick():
    serve_on(portpicker.pick_unused_port())


def one_server(address):
    port = portpicker.pick_unused_port(portserver_address=address)
    if not port:
        raise SystemExit("pickbench: the portserver gave no port")
    serve_on(port)


def one_bind0():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        if s.getsockname()[1] == 0:
            raise SystemExit("pickbench: bind(0) gave port 0")
    finally:
        s.close()


def quantile(v, q):
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000, help="samples")
    ap.add_argument("-w", type=int, default=-1, help="warm-up iterations")
    ap.add_argument("-t", default=None, help="name printed")
    ap.add_argument("mode", choices=["pick", "server", "bind0"])
    ap.add_argument("address", nargs="?")
    a = ap.parse_args()
    if a.mode == "server":
        if not a.address:
            ap.error("server needs the portserver's address")
        op = lambda: one_server(a.address)  # noqa: E731
    elif a.mode == "pick":
        op = one_pick
    else:
        op = one_bind0
    warm = a.w if a.w >= 0 else a.n // 10
    for _ in range(warm):
        op()
    v = []
    clock = time.perf_counter_ns
    for _ in range(a.n):
        t0 = clock()
        op()
        v.append(clock() - t0)
    v.sort()
    print("%s %d %d %d %d" % (a.t or a.mode, quantile(v, 0.5),
                              quantile(v, 0.1), quantile(v, 0.9), len(v)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
