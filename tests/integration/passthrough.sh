#!/bin/sh
# SPDX-License-Identifier: MIT
# passthrough.sh - what portshim must leave alone, and what it must refuse.
#
# Under `portshim run --ports 8080`: a server on an untagged port is bound
# exactly as asked and reachable; AF_UNIX sockets work; a port 0 bind gets
# an ordinary ephemeral port. A connect to a tagged port that has no
# mapping in the group is refused (PORTSHIM_UNMAPPED=refuse, the default
# for explicit lists) even though a foreign server listens on that port,
# while PORTSHIM_UNMAPPED=pass (and the default of --ports all) lets it
# through to the foreign server.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# A client that reports how its connect ended, by Python's exception.
CONNECT='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("error", e.errno, e)
'

# wait_line FILE TEXT TIMEOUT: waits until FILE has a line TEXT.
wait_line() {
    n=$(($3 * 10))
    while [ "$n" -gt 0 ]; do
        grep -qx "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# ------------------------------------------------ an untagged port
P=$(free_port 40000 40999)
bg "$T/untagged.log" "$PORTSHIM" run --ports 8080 --group pt \
    --map "$T/pt.map" -- "$PSTCP" listen 127.0.0.1 "$P" untagged
if wait_line "$T/untagged.log" "listening $P" 10; then
    ok "a server on untagged port $P sees port $P"
else
    not_ok "a server on untagged port $P sees port $P"
    diag_file "$T/untagged.log"
fi

# The kernel's view: 127.0.0.1 is 0100007F in /proc/net/tcp.
addrs=$(listen_addrs "$P" | tr '\n' ' ')
is "$addrs" "0100007F " "the real socket listens on 127.0.0.1:$P, as asked"

got=$(capture "$PSTCP" connect 127.0.0.1 "$P")
is "$got" "ok untagged" "a client without portshim reaches it"

got=$(capture "$PORTSHIM" run --ports 8080 --group pt --map "$T/pt.map" \
    -- "$PSTCP" connect 127.0.0.1 "$P")
is "$got" "ok untagged" "a client in the group reaches it on port $P"

is "$(map_real "$T/pt.map" tcp "$P")" "" "untagged port $P is not leased"

# ------------------------------------------------ AF_UNIX and port 0
got=$(capture "$PORTSHIM" run --ports 8080 -- "$PSTCP" unix "$T/unix.sock")
is "$got" "ok hello" "an AF_UNIX socket works under --ports 8080"

got=$(capture "$PORTSHIM" run --ports all -- "$PSTCP" unix "$T/unix2.sock")
is "$got" "ok hello" "an AF_UNIX socket works under --ports all"

read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range
for spec in 8080 all; do
    got=$(capture "$PORTSHIM" run --ports "$spec" -- \
        "$PSTCP" bind 127.0.0.1 0)
    case $got in
    '' | *[!0-9]*)
        not_ok "a port 0 bind under --ports $spec gets an ephemeral port"
        diag "got: '$got'"
        diag_file "$T/.capture.err"
        ;;
    *)
        if [ "$got" -ge "$elo" ] && [ "$got" -le "$ehi" ]; then
            ok "a port 0 bind under --ports $spec gets ephemeral port $got"
        else
            not_ok "a port 0 bind under --ports $spec gets an ephemeral port"
            diag "got $got, outside ip_local_port_range $elo-$ehi"
        fi
        ;;
    esac
done

# ------------------------------------------------ unmapped tagged ports
# Q is tagged in the wrapped runs but no group maps it; a foreign server
# (not under portshim) listens on the real port Q.
Q=$(free_port 41000 41999)
bg "$T/foreign.log" "$PSTCP" listen 127.0.0.1 "$Q" foreign
wait_line "$T/foreign.log" "listening $Q" 10 ||
    bail_out "the foreign server did not start on $Q"

got=$(capture "$PSTCP" connect 127.0.0.1 "$Q")
is "$got" "ok foreign" "a client without portshim reaches the foreign server"

got=$(capture "$PORTSHIM" run --ports "$Q" --group un --map "$T/un.map" \
    -- "$PY" -c "$CONNECT" 127.0.0.1 "$Q")
is "$got" "refused" \
    "tagged $Q, no mapping in the group: connect gets ConnectionRefusedError"

got=$(capture "$PORTSHIM" run --ports "$Q" --group un --map "$T/un.map" \
    -- "$PSTCP" connect 127.0.0.1 "$Q")
is "$got" "ECONNREFUSED" "... and errno is ECONNREFUSED"

got=$(capture env PORTSHIM_UNMAPPED=refuse "$PORTSHIM" run --ports "$Q" \
    --group un --map "$T/un.map" -- "$PY" -c "$CONNECT" 127.0.0.1 "$Q")
is "$got" "refused" "PORTSHIM_UNMAPPED=refuse refuses it too"

got=$(capture env PORTSHIM_UNMAPPED=pass "$PORTSHIM" run --ports "$Q" \
    --group un --map "$T/un.map" -- "$PSTCP" connect 127.0.0.1 "$Q")
is "$got" "ok foreign" "PORTSHIM_UNMAPPED=pass lets it reach the foreign server"

got=$(capture "$PORTSHIM" run --ports all --group un --map "$T/un.map" \
    -- "$PSTCP" connect 127.0.0.1 "$Q")
is "$got" "ok foreign" "under --ports all the default is pass"

done_testing
