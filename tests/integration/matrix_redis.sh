#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_redis.sh - four copies of an unmodified redis-server on 6379
# (binding both 0.0.0.0 and [::] by default: the two binds of one group
# must agree on the real port), each group's redis-cli writing a key
# with its own value and reading back only its own.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=matrix.sh
. "$(dirname "$0")/matrix.sh"

need redis-server redis-server
need redis-cli redis-tools
MATRIX=redis
PORTS=6379
RANGE=18500-18599

for i in $COPIES; do
    mkdir -p "$T/redis-$i"
    # No persistence, no config file: the defaults bind every address.
    serve "$i" redis-server --port 6379 --save '' --appendonly no \
        --dir "$T/redis-$i" --daemonize no
done
wait_copies 6379

# Both of a copy's listening sockets (IPv4 and IPv6) use its real port.
if has_ipv6_loopback; then
    for i in $COPIES; do
        eval "real=\$real_$i"
        # shellcheck disable=SC2154 # set by wait_copies
        n=$(listen_addrs "$real" | grep -c . || true)
        is "$n" 2 "copy $i: 0.0.0.0 and [::] both listen on real port $real"
    done
fi

# shellcheck disable=SC2317 # called through expect_each
set_key() {
    in_group "$1" redis-cli -p 6379 set owner "redis-copy-$1" >/dev/null &&
        in_group "$1" redis-cli -p 6379 get owner
}
expect_each "redis-cli sets a key and reads its own value back" \
    redis-copy set_key

# Once every group has written, each still reads its own value.
# shellcheck disable=SC2317 # called through expect_each
get_key() {
    in_group "$1" redis-cli -p 6379 get owner
}
expect_each "after all groups wrote, it still reads its own value" \
    redis-copy get_key

# redis-server reports the port it asked for (getsockname).
for i in $COPIES; do
    got=$(capture in_group "$i" redis-cli -p 6379 info server |
        sed -n 's/^tcp_port:\([0-9]*\).*/\1/p')
    is "$got" 6379 "copy $i: INFO server shows tcp_port 6379"
done

done_testing
