#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_socat.sh - four copies of unmodified socat echo servers, TCP
# and UDP on the same virtual port 7000 (one real port serves both, as
# for a DNS server), each copy prefixing the echo with its own name; each
# group's socat clients (TCP, connected UDP, and unconnected UDP whose
# replies come through recvfrom) reach their own copy only.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=matrix.sh
. "$(dirname "$0")/matrix.sh"

need socat socat
MATRIX=socat
PORTS=7000
RANGE=18600-18699

# socat's address syntax reserves ':' and ',': the commands avoid them.
# The TCP servers start first: a TCP port is likelier than a UDP one to
# be held by some other program on the host, and a real port chosen by a
# TCP bind is known to be free for TCP.
# -t 5 on both sides: after its input ends, socat waits 0.5 s by default
# for the other direction, and `exec cat` (with the shim, and under the
# sanitizer build its runtime too) may take longer than that to start on
# a loaded machine: the client would get the prefix and not the echo.
for i in $COPIES; do
    serve "$i" socat -t 5 TCP-LISTEN:7000,reuseaddr,fork \
        SYSTEM:"printf socat-tcp-$i-; exec cat"
done
wait_copies 7000
for i in $COPIES; do
    bg "$T/socat-udp-$i.log" "$PORTSHIM" run --ports "$PORTS" \
        --range "$RANGE" --group "socat-$i" --map "$T/socat-$i.map" -- \
        socat -t 5 UDP-RECVFROM:7000,fork \
        SYSTEM:"printf socat-udp-$i-; exec cat"
done
for i in $COPIES; do
    eval "real=\$real_$i"
    n=100
    while [ "$n" -gt 0 ] &&
        [ -z "$(map_real "$T/socat-$i.map" udp 7000)" ]; do
        sleep 0.1
        n=$((n - 1))
    done
    # shellcheck disable=SC2154 # set by wait_copies
    is "$(map_real "$T/socat-$i.map" udp 7000)" "$real" \
        "copy $i: udp 7000 has the same real port as tcp 7000"
    diag_file "$T/socat-udp-$i.log"
done

# The clients wait up to 5 s for the echo after their input ends (socat
# -t, as the servers): a UDP client waits that long every time.
# shellcheck disable=SC2317 # called through expect_each
tcp_echo() {
    printf hello | in_group "$1" socat -t 5 - TCP:127.0.0.1:7000 |
        sed 's/-hello$//'
}
expect_each "a TCP client gets its own copy's echo" socat-tcp tcp_echo

# shellcheck disable=SC2317 # called through expect_each
udp_echo() {
    printf hello | in_group "$1" socat -t 5 - UDP:127.0.0.1:7000 |
        sed 's/-hello$//'
}
expect_each "a connected UDP client gets its own copy's echo" socat-udp \
    udp_echo

# shellcheck disable=SC2317 # called through expect_each
udp_sendto() {
    printf hello | in_group "$1" socat -t 5 - UDP-SENDTO:127.0.0.1:7000 |
        sed 's/-hello$//'
}
expect_each \
    "an unconnected UDP client (sendto/recvfrom) gets its own copy's echo" \
    socat-udp udp_sendto

done_testing
