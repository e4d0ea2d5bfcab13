#!/bin/sh
# SPDX-License-Identifier: MIT
# restart.sh - a server restarted inside a live group. The group "live"
# is owned by a long-lived run (its own server holds port 8081). A server
# on 8080 joins the group with `portshim run --group live`, is killed,
# and is started again: it gets its old real port back, and the group's
# clients reach the new server. Then, while no server holds it, a
# process outside portshim takes that real port: the next server start
# gets a new real port, the mapping file says so, and clients follow it
# while the foreign process keeps the old number. Clients that join and
# leave never take the group's mapping away; when the owner ends, the
# group's leases and mapping file go. And a foreign SO_REUSEPORT listener
# never shares its port with a group.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RANGE=19200-19299
MAP=$T/live.map

# in_live CMD...: runs CMD as a member of the group.
# shellcheck disable=SC2317 # called through capture
in_live() {
    "$PORTSHIM" run --ports 8080,8081 --range "$RANGE" --group live \
        --map "$MAP" -- "$@"
}

# wait_line FILE TEXT: waits (10 s at most) for a line TEXT in FILE.
wait_line() {
    wl_n=100
    while [ "$wl_n" -gt 0 ]; do
        grep -qx "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        wl_n=$((wl_n - 1))
    done
    return 1
}

# serve LOG PORT NAME: a server answering NAME on PORT, joining the group.
serve() {
    bg "$1" "$PORTSHIM" run --ports 8080,8081 --range "$RANGE" \
        --group live --map "$MAP" -- "$PSTCP" listen 127.0.0.1 "$2" "$3"
}

# start NAME: a server answering NAME on 8080, joining the group.
start() {
    serve "$T/$1.log" 8080 "$1"
    eval "pid_$1=\$ps_last_pid"
    if ! wait_line "$T/$1.log" "listening 8080"; then
        diag "server $1 did not start"
        diag_file "$T/$1.log"
    fi
}

# stop NAME: kills the server NAME (its run and all).
stop() {
    eval "st_pid=\$pid_$1"
    # shellcheck disable=SC2154 # set by eval above
    kill_tree "$st_pid"
}

serve "$T/owner.log" 8081 owner
owner=$ps_last_pid
wait_line "$T/owner.log" "listening 8081" ||
    bail_out "the group's owner did not start: $(cat "$T/owner.log")"
r0=$(map_real "$MAP" tcp 8081)

start first
r1=$(map_real "$MAP" tcp 8080)
ok "the first server gets real port $r1"
is "$(capture in_live "$PSTCP" connect 127.0.0.1 8080)" "ok first" \
    "a client joining the group reaches the first server"
stop first
is "$(map_real "$MAP" tcp 8080)" "$r1" \
    "the lease outlives the server's run: 8080 -> $r1 is still mapped"

start second
is "$(map_real "$MAP" tcp 8080)" "$r1" \
    "the restarted server gets its old real port $r1 back"
is "$(capture in_live "$PSTCP" connect 127.0.0.1 8080)" "ok second" \
    "a client reaches the restarted server"
stop second

# A process outside portshim takes the real port meanwhile.
bg "$T/foreign.log" "$PSTCP" listen 127.0.0.1 "$r1" foreign
wait_line "$T/foreign.log" "listening $r1" ||
    bail_out "the foreign server could not take $r1: $(cat "$T/foreign.log")"

start third
r2=$(map_real "$MAP" tcp 8080)
if [ -n "$r2" ] && [ "$r2" != "$r1" ]; then
    ok "the old real port taken, the server gets a new one ($r2)"
else
    not_ok "the old real port taken, the server gets a new one"
    diag "mapping: '$r2', old: $r1"
    diag_file "$T/third.log"
fi
is "$(capture in_live "$PSTCP" connect 127.0.0.1 8080)" "ok third" \
    "a client in the group follows it to the new port"
is "$(capture "$PSTCP" connect 127.0.0.1 "$r1")" "ok foreign" \
    "the foreign process keeps $r1"
is "$(map_real "$MAP" tcp 8081)" "$r0" \
    "the owner's own lease (8081 -> $r0) is untouched"
stop third

# A foreign SO_REUSEPORT listener (same user, outside portshim) holds the
# first port of a range: a group's SO_REUSEPORT server, whose own bind
# would succeed there and share the foreign listener's connections, gets
# the next port instead.
REUSE='
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
print("listening", flush=True)
time.sleep(60)
'
RP=19290
bg "$T/rpforeign.log" "$PY" -c "$REUSE" "$RP"
wait_line "$T/rpforeign.log" listening ||
    bail_out "the foreign listener could not take $RP"
bg "$T/rp.log" "$PORTSHIM" run --ports 8082 --range "$RP-$((RP + 1))" \
    --group rp --map "$T/rp.map" -- "$PY" -c "$REUSE" 8082
wait_line "$T/rp.log" listening || diag_file "$T/rp.log"
is "$(map_real "$T/rp.map" tcp 8082)" "$((RP + 1))" \
    "a foreign SO_REUSEPORT listener's port is never given to a group"

# The owner ends: its group goes with it.
kill -TERM "$owner"
wait_exit "$owner" 10 || not_ok "the owner's run stops on SIGTERM"
if [ -e "$MAP" ]; then
    not_ok "the mapping file is removed with the owner"
else
    ok "the mapping file is removed with the owner"
fi
st=0
"$PORTSHIM" port --group live 8080 >/dev/null 2>&1 || st=$?
is "$st" 1 "8080 has no lease in the group any more"
st=0
"$PORTSHIM" port --group live 8081 >/dev/null 2>&1 || st=$?
is "$st" 1 "nor has 8081"

done_testing
