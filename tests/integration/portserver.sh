#!/bin/sh
# SPDX-License-Identifier: MIT
# portserver.sh - `portshim portserver` against the real client: Debian's
# python3-portpicker with PORTSERVER_ADDRESS set.
#
# Eight Python processes call portpicker.pick_unused_port() at the same
# moment: each gets a distinct port from the server (not portpicker's
# own fallback), bindable, that `portshim ls` shows as leased to that
# process; when they exit, gc frees the leases. Then: a burst of 100
# requests on parallel connections, a client that never sends does not
# hold up the others, refusals (pid 1, a pid that does not exist, a bad
# request) get the empty reply, a second server on the same address is
# refused, a file-system socket is removed at exit, and SIGTERM and
# SIGINT stop the server cleanly with one log line per request.

# shellcheck disable=SC2016 # the inner shells expand their own arguments
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

"$PY" -c 'import portpicker' 2>/dev/null ||
    skip_all "Debian's python3-portpicker is not installed"

NPROC=8
GO=$T/go
STOP=$T/stop
# The test's own range and abstract address, so that concurrent tests
# and a portserver the user runs are left alone.
RANGE_LO=30000
RANGE_HI=30999
PORTSHIM_RANGE=$RANGE_LO-$RANGE_HI
export PORTSHIM_RANGE
ADDR=@portshim-test-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')

# wait_grep PATTERN FILE TIMEOUT: waits until FILE has a line matching
# PATTERN.
wait_grep() {
    wg_n=$(($3 * 10))
    while [ "$wg_n" -gt 0 ]; do
        grep -q "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
        wg_n=$((wg_n - 1))
    done
    return 1
}

# wait_count PATTERN COUNT TIMEOUT FILE...: waits until COUNT of FILEs
# have a line matching PATTERN.
wait_count() {
    wc_pat=$1
    wc_want=$2
    wc_n=$(($3 * 10))
    shift 3
    while [ "$wc_n" -gt 0 ]; do
        wc_have=0
        for wc_f in "$@"; do
            grep -q "$wc_pat" "$wc_f" 2>/dev/null &&
                wc_have=$((wc_have + 1))
        done
        [ "$wc_have" -ge "$wc_want" ] && return 0
        sleep 0.1
        wc_n=$((wc_n - 1))
    done
    return 1
}

# ask PID [ADDRESS]: what the server at ADDRESS (default $ADDR) answers
# for PID, through portpicker's own client function ("None" when the
# reply is empty).
ask() {
    "$PY" -c '
import sys, portpicker
print(portpicker.get_port_from_port_server(sys.argv[2], pid=int(sys.argv[1])))
' "$1" "${2:-$ADDR}" 2>/dev/null
}

bg "$T/server.log" env PORTSHIM_LOG=info "$PORTSHIM" portserver \
    --address "$ADDR"
server=$ps_last_pid
if wait_grep "portserver: listening on $ADDR" "$T/server.log" 10; then
    ok "the portserver listens on $ADDR"
else
    not_ok "the portserver listens on $ADDR"
    diag_file "$T/server.log"
    bail_out "no portserver"
fi

# ----------------------------------------- eight real clients at once
cat >"$T/client.py" <<'EOF'
import os, socket, sys, time
import portpicker

go, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.01)
port = portpicker.pick_unused_port()
# Bindable for TCP and UDP, as portpicker promises.
for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, typ)
    s.bind(("0.0.0.0", port))
    s.close()
print("ready %d %d" % (os.getpid(), port), flush=True)
while not os.path.exists(stop):
    time.sleep(0.05)
EOF
logs=""
i=1
while [ "$i" -le "$NPROC" ]; do
    bg "$T/client$i.log" env PORTSERVER_ADDRESS="$ADDR" "$PY" \
        "$T/client.py" "$GO" "$STOP"
    logs="$logs $T/client$i.log"
    i=$((i + 1))
done
touch "$GO"
# shellcheck disable=SC2086 # file names without blanks
if wait_count '^ready ' "$NPROC" 30 $logs; then
    ok "$NPROC portpicker clients got a port"
else
    not_ok "$NPROC portpicker clients got a port"
    for f in $logs; do diag_file "$f"; done
fi
# shellcheck disable=SC2086
cat $logs >"$T/clients.txt"
is "$(grep -c -e 'Portserver failed' -e 'Socket error' "$T/clients.txt" ||
    true)" 0 "no client fell back to portpicker's own search"
awk '$1 == "ready" { print $2, $3 }' "$T/clients.txt" | sort >"$T/got"
is "$(awk '{ print $2 }' "$T/got" | sort -n | uniq -d | wc -l | tr -d ' ')" \
    0 "the $NPROC ports are distinct"
is "$(awk -v lo=$RANGE_LO -v hi=$RANGE_HI '$2 < lo || $2 > hi' "$T/got" |
    wc -l | tr -d ' ')" 0 "they come from PORTSHIM_RANGE"

"$PORTSHIM" ls --json | "$PY" -c '
import json, sys
for l in json.load(sys.stdin)["leases"]:
    if l["kind"] == "pick" and l["alive"]:
        print(l["holder_pid"], l["real"])' | sort >"$T/leased"
if cmp -s "$T/got" "$T/leased"; then
    ok "portshim ls shows each port leased to the process that asked"
else
    not_ok "portshim ls shows each port leased to the process that asked"
    diff "$T/got" "$T/leased" | head -10 | sed 's/^/# /'
fi
check "ls names the client's command" sh -c \
    '"$1" ls | grep -q "client.py"' ls "$PORTSHIM"
is "$(grep -c 'portserver: pid [0-9]* (peer pid [0-9]* uid [0-9]*) -> port' \
    "$T/server.log")" "$NPROC" "one info line per request"

# A portshim pick never gets a port the server handed out.
"$PORTSHIM" pick --count 20 >"$T/picked" 2>&1 || true
awk '{ print $2 }' "$T/got" | sort -n >"$T/got-ports"
is "$(sort -n "$T/picked" | comm -12 - "$T/got-ports" | wc -l | tr -d ' ')" \
    0 "portshim pick never hands out a portserver client's port"

touch "$STOP"
i=0
while [ "$i" -lt 100 ] && "$PORTSHIM" ls | grep -q client.py; do
    sleep 0.1
    i=$((i + 1))
done
"$PORTSHIM" gc >"$T/gc.txt" 2>&1 || true
# The test shell's 20 picks stay: their holder lives.
is "$(tail -n 1 "$T/gc.txt")" "freed $NPROC leases" \
    "after the clients exit, gc frees their $NPROC leases"
is "$("$PORTSHIM" ls --json | "$PY" -c '
import json, sys
print(sum(1 for l in json.load(sys.stdin)["leases"]
          if l["holder_pid"] != int(sys.argv[1])))' "$$")" 0 \
    "... and no lease of theirs is left"
# shellcheck disable=SC2046
"$PORTSHIM" release $(cat "$T/picked") >/dev/null 2>&1 || true

# ------------------------------- many connections, and a silent client
"$PY" - "$ADDR" >"$T/burst.txt" 2>&1 <<'EOF' || true
import os, socket, sys, threading
addr = "\0" + sys.argv[1][1:]
ports, errors = [], []
def one():
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(addr)
        s.sendall(b"%d\n" % os.getpid())
        ports.append(int(s.recv(1024).split(b"\n")[0]))
        s.close()
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=one) for _ in range(100)]
for t in ts: t.start()
for t in ts: t.join()
print("ports %d distinct %d errors %d" % (len(ports), len(set(ports)),
                                          len(errors)))
for e in errors[:3]: print(e)
EOF
is "$(head -n 1 "$T/burst.txt")" "ports 100 distinct 100 errors 0" \
    "100 requests on parallel connections get 100 distinct ports"
diag_file "$T/burst.txt"
# A client that connects and never sends holds a slot, nothing more: a
# request made after it connected is answered while it is still
# connected (its socket is still open after the answer). The server
# drops a silent client after 10 s, so the attempt is made again if this
# process was stalled that long; a server that waited for the silent
# client would answer only after dropping it, every time.
"$PY" - "$ADDR" >"$T/silent.txt" 2>&1 <<'EOF' || true
import os, socket, sys
addr = "\0" + sys.argv[1][1:]
for attempt in range(5):
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(addr)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(120)
    s.connect(addr)
    s.sendall(b"%d\n" % os.getpid())
    reply = s.recv(1024).split(b"\n")[0]
    s.close()
    try:
        state = "closed" if silent.recv(1, socket.MSG_DONTWAIT) == b"" \
            else "sent data"
    except BlockingIOError:
        state = "open"
    silent.close()
    print("attempt %d: reply %r, silent client %s" % (attempt, reply, state))
    if reply.isdigit() and state == "open":
        print("served while a silent client stayed connected")
        break
EOF
if grep -q '^served while a silent client stayed connected$' "$T/silent.txt"
then
    ok "a request is served while a silent client stays connected"
else
    not_ok "a request is served while a silent client stays connected"
    diag_file "$T/silent.txt"
fi

# ------------------------------------------------------------ refusals
is "$(ask 1)" "None" "pid 1 gets the empty reply"
sh -c 'exit 0' &
gone=$!
wait "$gone" || true
is "$(ask "$gone")" "None" "a pid that is not running gets the empty reply"
bad=$("$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0" + sys.argv[1][1:])
s.sendall(b"not-a-pid\n")
print(repr(s.recv(1024)))' "$ADDR" 2>&1)
is "$bad" "b''" "a request that is not a pid gets the empty reply"
check "each refusal is logged with its reason" sh -c \
    'grep -q "refused: pid 1 never exits" "$1" &&
     grep -q "refused: no such process" "$1" &&
     grep -q "refused: not a pid" "$1"' grep "$T/server.log"

# --------------------------------------------------- exhaustion
# The server's range is the whole of PORTSHIM_RANGE; a tiny one runs out.
tiny=""
for try in 30990 30993 30996; do
    if "$PSTCP" free "$try" "$try" >/dev/null 2>&1 &&
        "$PSTCP" free $((try + 1)) $((try + 1)) >/dev/null 2>&1; then
        tiny=$try-$((try + 1))
        break
    fi
done
ADDR2=${ADDR}-tiny
bg "$T/server2.log" env PORTSHIM_LOG=info PORTSHIM_RANGE="$tiny" \
    "$PORTSHIM" portserver --address "$ADDR2"
tiny_server=$ps_last_pid
wait_grep "listening" "$T/server2.log" 10 || diag_file "$T/server2.log"
a=$(ask $$ "$ADDR2")
b=$(ask $$ "$ADDR2")
c=$(ask $$ "$ADDR2")
is "$c" "None" "when the range is used up the reply is empty"
check "... the first two requests got the range's two ports" \
    test "$a" != None -a "$b" != None -a "$a" != "$b"
check "... and the server says why" \
    grep -q "no free port left in PORTSHIM_RANGE $tiny" "$T/server2.log"
kill -INT "$tiny_server"
if wait_exit "$tiny_server" 5; then
    ok "SIGINT stops the server"
else
    not_ok "SIGINT stops the server"
fi
# shellcheck disable=SC2086
"$PORTSHIM" release $a $b >/dev/null 2>&1 || true

# ------------------------------------------ one address, one server
rc=0
"$PORTSHIM" portserver --address "$ADDR" >"$T/second.out" 2>"$T/second.err" ||
    rc=$?
is "$rc" 1 "a second server on the same address exits 1"
check "... saying the address is in use" \
    grep -q "^portshim: $ADDR is in use" "$T/second.err"

# ---------------------------------------------------- stopping cleanly
kill -TERM "$server"
rc=0
wait "$server" || rc=$?
is "$rc" 0 "SIGTERM stops the server with status 0"
check "... logging that it stops" grep -q 'portserver: Terminated: stopping' \
    "$T/server.log"
is "$(grep -vc '^portshim\[[0-9]*\]: portserver: ' "$T/server.log" ||
    true)" 0 "every line the server wrote is a one-line portserver log line"

# -------------------------------------------- a file-system socket
SOCK=$T/portserver.sock
bg "$T/server3.log" "$PORTSHIM" portserver --address "$SOCK"
fs_server=$ps_last_pid
i=0
while [ "$i" -lt 100 ] && [ ! -S "$SOCK" ]; do
    sleep 0.1
    i=$((i + 1))
done
p=$(ask $$ "$SOCK")
case $p in
[0-9]*) ok "a server on a file-system socket answers" ;;
*) not_ok "a server on a file-system socket answers"
    diag "got '$p'"
    diag_file "$T/server3.log" ;;
esac
kill -TERM "$fs_server"
wait_exit "$fs_server" 5 || true
check "... and removes its socket file when it stops" test ! -e "$SOCK"
# A stale socket file (its server died) is replaced.
"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])' "$SOCK"
bg "$T/server4.log" "$PORTSHIM" portserver --address "$SOCK"
i=0
p=None
while [ "$i" -lt 50 ]; do
    p=$(ask $$ "$SOCK")
    case $p in [0-9]*) break ;; esac
    sleep 0.1
    i=$((i + 1))
done
case $p in
[0-9]*) ok "a stale socket file is replaced" ;;
*) not_ok "a stale socket file is replaced"
    diag_file "$T/server4.log" ;;
esac
kill_tree "$ps_last_pid"

# ------------------------------------------------------------ usage
rc=0
"$PORTSHIM" portserver --address @ >/dev/null 2>&1 || rc=$?
is "$rc" 2 "--address @ is a usage error"
rc=0
"$PORTSHIM" portserver extra >/dev/null 2>&1 || rc=$?
is "$rc" 2 "an extra argument is a usage error"
rc=0
"$PORTSHIM" portserver --help >"$T/help.out" 2>&1 || rc=$?
is "$rc" 0 "portserver --help exits 0"
check "... and names the default address" \
    grep -q '@unittest-portserver' "$T/help.out"

done_testing
