#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_node.sh - four copies of an unmodified Node.js one-liner,
# http.createServer().listen(3000) (libuv binds [::] dual-stack when the
# host has IPv6), each answering with its own text; each group's client
# reaches its own copy at 127.0.0.1:3000 and at [::1]:3000.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=matrix.sh
. "$(dirname "$0")/matrix.sh"

need node nodejs
MATRIX=node
PORTS=3000
RANGE=18700-18799

SERVER='
const id = process.argv[1];
require("http").createServer((req, res) => res.end(id)).listen(3000,
    function () { console.log("listening " + this.address().port); });
'
for i in $COPIES; do
    serve "$i" node -e "$SERVER" "node-copy-$i"
done
wait_copies 3000

# Node asked its server for its address (getsockname): it sees 3000.
for i in $COPIES; do
    n=50
    while [ "$n" -gt 0 ] && ! grep -q listening "$T/node-$i.log"; do
        sleep 0.1
        n=$((n - 1))
    done
    is "$(grep listening "$T/node-$i.log")" "listening 3000" \
        "copy $i: server.address().port is 3000"
done

# shellcheck disable=SC2317 # called through expect_each
get4() {
    in_group "$1" "$PY" -c "$HTTP_GET" http://127.0.0.1:3000/
}
expect_each "its client gets its own copy from 127.0.0.1:3000" node-copy get4

if has_ipv6_loopback; then
    # shellcheck disable=SC2317 # called through expect_each
    get6() {
        in_group "$1" "$PY" -c "$HTTP_GET" 'http://[::1]:3000/'
    }
    expect_each "its client gets its own copy from [::1]:3000" node-copy get6
else
    skip "::1 cannot be bound here" "clients over IPv6"
fi

# A Node.js client too (libuv's connect).
# shellcheck disable=SC2317 # called through expect_each
node_get() {
    in_group "$1" node -e '
require("http").get("http://127.0.0.1:3000/", (res) => {
    let body = "";
    res.on("data", (d) => body += d);
    res.on("end", () => console.log(body));
});'
}
expect_each "a Node.js client gets its own copy" node-copy node_get

done_testing
