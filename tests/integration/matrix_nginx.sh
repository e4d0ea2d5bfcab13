#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_nginx.sh - four copies of an unmodified nginx, each with three
# worker processes and `listen 8080 reuseport` (the master binds one
# SO_REUSEPORT socket per worker: all must get the group's one real
# port), each copy answering with its own text, each group's client
# reaching its own copy through 127.0.0.1:8080.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=matrix.sh
. "$(dirname "$0")/matrix.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
why="nginx is not installed (Debian package nginx-light; scripts/test"
[ -x "$NGINX" ] || skip_all "$why installs it)"
MATRIX=nginx
PORTS=8080
RANGE=18400-18499
WORKERS=3

for i in $COPIES; do
    d=$T/nginx-$i
    mkdir -p "$d"
    nginx_conf "$d" "$WORKERS" "8080 reuseport" "nginx-copy-$i" "daemon off;"
    serve "$i" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
done
wait_copies 8080

for i in $COPIES; do
    eval "real=\$real_$i"
    # shellcheck disable=SC2154 # set by wait_copies
    n=$(listen_addrs "$real" | grep -c . || true)
    is "$n" "$WORKERS" \
        "copy $i: $WORKERS SO_REUSEPORT listeners on real port $real"
done

# shellcheck disable=SC2317 # called through expect_each
get() {
    in_group "$1" "$PY" -c "$HTTP_GET" http://127.0.0.1:8080/
}
expect_each "its client gets its own page from 127.0.0.1:8080" nginx-copy get

# Every copy's page, many times: each request lands on some worker of
# the copy, never on another copy.
# shellcheck disable=SC2317 # called through expect_each
get20() {
    in_group "$1" "$PY" -c '
import sys, urllib.request
o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(" ".join(sorted(set(o.open(sys.argv[1], timeout=10).read().decode()
                          for _ in range(20)))))' http://127.0.0.1:8080/
}
expect_each "20 requests, all answered by its own copy" nginx-copy get20

done_testing
