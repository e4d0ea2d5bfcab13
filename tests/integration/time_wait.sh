#!/bin/sh
# SPDX-License-Identifier: MIT
# time_wait.sh - a real port whose only sockets are TIME_WAIT remnants of
# a finished group is handed out again (docs/time-wait.md). A range of one
# port: a group's server answers connections and closes first, so the
# port is left in TIME_WAIT when the group ends; the next group's server
# (Python, which binds without SO_REUSEADDR) gets that port, and sees its
# virtual port; a port where something listens is still refused.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# Below the ephemeral ports, as portshim wants its ranges.
P=$(free_port 29500 29999)

# timewait PORT: true if a TCP socket at local port PORT is in TIME_WAIT.
# shellcheck disable=SC2317 # called through eval
timewait() {
    tw_hex=$(printf '%04X' "$1")
    awk -v port="$tw_hex" '
        $4 == "06" { split($2, a, ":"); if (a[2] == port) found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

bg "$T/first.log" "$PORTSHIM" run --ports 8080 --range "$P-$P" \
    --group tw-first --map "$T/first.map" -- "$PSTCP" listen 127.0.0.1 8080
first=$ps_last_pid
wait_for_map "$T/first.map" 8080 20 || true
is "$(map_real "$T/first.map" tcp 8080)" "$P" "the first group gets port $P"
for i in 1 2 3; do
    "$PSTCP" connect 127.0.0.1 "$P" >"$T/c$i.out" 2>&1 || true
done
kill_tree "$first"
wait "$first" 2>/dev/null || true
check "port $P is left in TIME_WAIT, and nothing listens there" \
    eval "timewait $P && ! listening $P"

SERVER='
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 8080))
s.listen()
print(s.getsockname()[1], s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0)
sys.stdout.flush()
c, _ = s.accept()
c.sendall(b"second")
c.close()
'
bg "$T/second.log" "$PORTSHIM" run --ports 8080 --range "$P-$P" \
    --group tw-second --map "$T/second.map" -- "$PY" -c "$SERVER"
second=$ps_last_pid
wait_for_map "$T/second.map" 8080 20 || true
is "$(map_real "$T/second.map" tcp 8080)" "$P" \
    "the next group gets port $P again, though it is in TIME_WAIT"
n=0
until grep -q '^8080 ' "$T/second.log" || [ "$n" -ge 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
is "$(grep '^8080 ' "$T/second.log")" "8080 True" \
    "its server (no SO_REUSEADDR of its own) binds, listens and sees 8080"
is "$("$PSTCP" connect 127.0.0.1 "$P" 2>&1)" "ok second" \
    "and answers on port $P"
wait_exit "$second" 10 || kill_tree "$second"

# A port where a server listens is never handed out, TIME_WAIT or not.
bg "$T/holder.log" "$PSTCP" listen 127.0.0.1 "$P" foreign
holder=$ps_last_pid
wait_tcp 127.0.0.1 "$P" 10 || true
capture "$PORTSHIM" run --ports 8080 --range "$P-$P" --group tw-third \
    -- "$PY" -c 'import socket; socket.socket().bind(("127.0.0.1", 8080))' \
    >/dev/null
like "$T/.capture.err" "no free port|Address already in use|EADDRINUSE" \
    "with a listener on port $P, the range has no port to give"
kill_tree "$holder"

done_testing
