#!/bin/sh
# SPDX-License-Identifier: MIT
# server_test.sh NAME PORT PYTHON - one test of the sample suite: serves
# a folder holding NAME on 127.0.0.1:PORT, fetches it back (waiting up
# to 60 s for the server, a safety net), keeps the server up for a
# second (so that the copies overlap), stops it.
# Passes if the server answered with NAME.
set -eu
name=$1
port=$2
python=$3
mkdir -p "www-$name"
echo "$name" >"www-$name/id.txt"
"$python" -m http.server "$port" --bind 127.0.0.1 --directory "www-$name" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
got=$("$python" - "$port" <<'PY'
import sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + 60
while True:
    try:
        url = "http://127.0.0.1:%s/id.txt" % sys.argv[1]
        print(opener.open(url, timeout=5).read().decode().strip())
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
time.sleep(1)
PY
)
echo "got '$got'"
[ "$got" = "$name" ]
