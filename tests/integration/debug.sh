#!/bin/sh
# SPDX-License-Identifier: MIT
# debug.sh - debugging port clashes, against real processes: `who` on a
# foreign (unwrapped) listener, a TIME_WAIT socket and a wrapped server in
# a group (by real and by virtual port); `ls` and `gc` on a group whose
# run was killed with SIGKILL; the shim's one-line diagnostic of a bind
# that fails with EADDRINUSE, tagged and untagged; `wait` waiting while
# its port is not mapped, or mapped with nothing listening, returning
# once a delayed server listens, and timing out with status 1, not
# before its time; `gc --reset` saying what it found; what `who` says it could
# not see when not root; every --json output read by python3's json
# module; the man pages rendering cleanly; `--help` of every command
# naming the options portshim(1) lists, and the other way round; and the
# bash completion.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# Real ports for this test's groups, away from the other tests' ranges.
RANGE=27000-27999
# Virtual ports: any number works, but `who` also lists the host's other
# sockets at that number, so numbers that nothing else here uses are
# taken (pstcp free), one from each block.
VA=$(free_port 29000 29099)
VD=$(free_port 29100 29199)
VW=$(free_port 29200 29299)
VS=$(free_port 29300 29399)
VM=$(free_port 29400 29499)
VU=$(free_port 29500 29599)
VR=$(free_port 29600 29699)
MAN1=$PS_SRCDIR/man/portshim.1
MAN7=$PS_SRCDIR/man/libportshim.7

# st CMD...: prints CMD's exit status (stdout to $T/out, stderr to $T/err).
st() {
    if "$@" >"$T/out" 2>"$T/err"; then
        echo 0
    else
        echo $?
    fi
}

# json DESC FILE PYTHON: parses FILE with python3's json module into d and
# runs PYTHON (assert statements) on it.
json() {
    json_desc=$1
    json_file=$2
    shift 2
    check "$json_desc" "$PY" -c "
import json, sys
d = json.load(open(sys.argv[1]))
$1
" "$json_file"
}

# ----------------------------------------------------- a foreign listener
fport=$(free_port 28000 28999)
bg "$T/foreign.log" "$PSTCP" listen 127.0.0.1 "$fport"
fpid=$ps_last_pid
wait_tcp 127.0.0.1 "$fport" 20 || bail_out "the foreign listener did not start"

is "$(st "$PORTSHIM" who "$fport")" 0 "who on a foreign listener exits 0"
like "$T/out" "^PROTO +STATE +LOCAL +REMOTE +PID +LEASE +COMMAND$" \
    "who prints a header"
like "$T/out" "^tcp +LISTEN +127\\.0\\.0\\.1:$fport +0\\.0\\.0\\.0:\\* +$fpid +- +.*pstcp listen 127\\.0\\.0\\.1 $fport\$" \
    "who names the listener's pid and command, without a lease"
is "$(st "$PORTSHIM" who --json "$fport")" 0 "who --json exits 0"
json "who --json: the listener, its process, no lease" "$T/out" "
assert d['port'] == $fport and d['protocol'] == 'tcp'
s = [x for x in d['sockets'] if x['state'] == 'LISTEN']
assert len(s) == 1, s
s = s[0]
assert s['protocol'] == 'tcp' and s['family'] == 'ipv4'
assert s['local_address'] == '127.0.0.1' and s['local_port'] == $fport
assert s['remote_address'] == '0.0.0.0' and s['remote_port'] == 0
assert s['matched'] == 'local' and s['inode'] > 0
assert isinstance(s['uid'], int)
assert [p['pid'] for p in s['processes']] == [$fpid]
assert 'pstcp listen' in s['processes'][0]['command']
assert s['owner_hidden'] is False and s['lease'] is None
assert d['leases'] == [] and d['hidden_sockets'] == 0
assert isinstance(d['unreadable_processes'], int)
assert isinstance(d['root'], bool) and d['registry_error'] is None
"
st "$PORTSHIM" who "$fport" >/dev/null
is "$(sed -n 1p "$T/out")" \
    "port $fport: held by pid $fpid ($PSTCP listen 127.0.0.1 $fport), not under portshim" \
    "who answers in one line first: the holder, not under portshim"
st "$PORTSHIM" who --json "$fport" >/dev/null
json "who --json: version 1 and the one-line summary" "$T/out" "
assert d['version'] == 1 and d['listening_only'] is False
assert d['summary'].startswith('port $fport: held by pid $fpid ('), d
"
is "$(st "$PORTSHIM" who --udp "$fport")" 1 \
    "who --udp on a TCP-only port exits 1"
is "$(cat "$T/err")" "portshim: nothing holds udp port $fport" "and says so"

# ------------------------------------------------------- TIME_WAIT
# pstcp's server writes its reply and closes: the side that closed first
# (usually the server, at the listening port) keeps a TIME_WAIT socket
# that no process holds.
is "$("$PSTCP" connect 127.0.0.1 "$fport")" "ok pstcp" \
    "a client talks to the foreign listener"
st "$PORTSHIM" who "$fport" >/dev/null
like "$T/out" "^tcp +TIME_WAIT +127\\.0\\.0\\.1:[0-9]+ +127\\.0\\.0\\.1:[0-9]+ +- +- +-\$" \
    "who shows the TIME_WAIT socket with no process"
st "$PORTSHIM" who --json "$fport" >/dev/null
json "who --json: TIME_WAIT has inode 0 and no process" "$T/out" "
tw = [x for x in d['sockets'] if x['state'] == 'TIME_WAIT']
assert tw, d['sockets']
for s in tw:
    assert s['inode'] == 0 and s['processes'] == []
    assert s['owner_hidden'] is False
    assert $fport in (s['local_port'], s['remote_port'])
    assert s['matched'] == ('local' if s['local_port'] == $fport
                            else 'remote')
# The listener comes first.
assert d['sockets'][0]['state'] == 'LISTEN'
"
st "$PORTSHIM" who --listening "$fport" >/dev/null
check "who --listening leaves the TIME_WAIT sockets out" \
    sh -c "! grep -q TIME_WAIT '$T/out' && grep -q LISTEN '$T/out'"
st "$PORTSHIM" who "$fport" --listening --json >/dev/null
json "who --listening --json: the listener only" "$T/out" "
assert d['listening_only'] is True
assert [x['state'] for x in d['sockets']] == ['LISTEN'], d['sockets']
"

# ------------------------------------------------- a wrapped server
bg "$T/srv.log" "$PORTSHIM" run --ports "$VA" --group dbg-a --range "$RANGE" \
    -- "$PSTCP" listen 127.0.0.1 "$VA"
real=$(capture "$PORTSHIM" wait --group dbg-a --timeout 20 "$VA")
check "wait prints the wrapped server's real port" \
    expr "X$real" : 'X[0-9][0-9]*$'
[ -n "$real" ] || bail_out "the wrapped server did not start"
is "$("$PSTCP" connect 127.0.0.1 "$real")" "ok pstcp" \
    "the real port accepts connections when wait returns"
is "$(st "$PORTSHIM" who "$VA")" 0 "who by virtual port exits 0"
like "$T/out" "^tcp +LISTEN +127\\.0\\.0\\.1:$real +0\\.0\\.0\\.0:\\* +[0-9]+ +dbg-a $VA->$real [0-9]+s +.*pstcp listen 127\\.0\\.0\\.1 $VA\$" \
    "who $VA shows the listener at the real port with its lease"
spid=$(awk -v p="127.0.0.1:$real" '$2 == "LISTEN" && $3 == p { print $5 }' \
    "$T/out")
is "$(sed -n 1p "$T/out")" \
    "port $VA: lease of group dbg-a (virtual $VA), real port $real, listening: pid $spid ($PSTCP listen 127.0.0.1 $VA)" \
    "who $VA answers in one line first: the group's lease, listening"
is "$(st "$PORTSHIM" who "$real")" 0 "who by real port exits 0"
like "$T/out" "^tcp +LISTEN +127\\.0\\.0\\.1:$real .* $spid +dbg-a $VA->$real " \
    "who by real port shows the same socket and lease"
st "$PORTSHIM" who --json "$VA" >/dev/null
json "who --json $VA: the lease of group dbg-a" "$T/out" "
s = [x for x in d['sockets'] if x['state'] == 'LISTEN'
     and x['local_port'] == $real]
assert len(s) == 1, d
l = s[0]['lease']
assert l['group'] == 'dbg-a' and l['kind'] == 'group'
assert l['virtual'] == $VA and l['real'] == $real
assert l['protocols'] == ['tcp'] and l['alive'] is True
assert l['pid'] == $spid and isinstance(l['holder_pid'], int)
assert isinstance(l['age_seconds'], int) and l['age_seconds'] >= 0
assert 'pstcp listen' in l['command']
assert s[0]['processes'][0]['pid'] == $spid
assert any(x['real'] == $real for x in d['leases'])
"
is "$(st "$PORTSHIM" ls --group dbg-a)" 0 "ls --group exits 0"
like "$T/out" "^dbg-a +tcp +$VA +$real +$spid +yes +[0-9]+s +.*pstcp listen 127\\.0\\.0\\.1 $VA\$" \
    "ls shows the lease alive, with its age and command"
st "$PORTSHIM" ls --json >/dev/null
json "ls --json: the lease's fields" "$T/out" "
l = [x for x in d['leases'] if x['group'] == 'dbg-a']
assert len(l) == 1, d
l = l[0]
assert set(l) >= {'group', 'kind', 'protocols', 'virtual', 'real', 'pid',
                  'holder_pid', 'alive', 'age_seconds', 'command'}
assert l['kind'] == 'group' and l['virtual'] == $VA and l['real'] == $real
assert l['alive'] is True and l['pid'] == $spid
"

# A client of the group connected to the virtual port: its socket's
# remote port is the real one. pstcp answers and closes, so the client
# sits in CLOSE_WAIT until it closes too.
bg "$T/client.log" "$PORTSHIM" run --ports "$VA" --group dbg-a \
    --range "$RANGE" -- "$PY" -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
print("connected", s.getpeername()[1], flush=True)
time.sleep(600)
' "$VA"
n=100
while [ "$n" -gt 0 ] && ! grep -q connected "$T/client.log"; do
    sleep 0.1
    n=$((n - 1))
done
is "$(cat "$T/client.log")" "connected $VA" \
    "a client of the group connects to the virtual port"
st "$PORTSHIM" who --json "$VA" >/dev/null
json "who --json $VA shows the client, matched by its remote port" \
    "$T/out" "
# Earlier probes of the real port may linger in TIME_WAIT: the client
# is the one socket with a process.
c = [x for x in d['sockets'] if x['matched'] == 'remote'
     and x['remote_port'] == $real and x['processes']]
assert len(c) == 1, d['sockets']
c = c[0]
assert c['remote_port'] == $real and c['local_port'] != $real
assert c['state'] in ('ESTABLISHED', 'CLOSE_WAIT'), c['state']
assert 'python' in c['processes'][0]['command']
assert c['lease']['group'] == 'dbg-a' and c['lease']['real'] == $real
# Sockets matched by their local port come first.
assert d['sockets'][-1]['matched'] == 'remote'
"
st "$PORTSHIM" who "$VA" >/dev/null
like "$T/out" "^tcp +(ESTABLISHED|CLOSE_WAIT) +127\\.0\\.0\\.1:[0-9]+ +127\\.0\\.0\\.1:$real +[0-9]+ +dbg-a $VA->$real [0-9]+s +.*python" \
    "who shows the client's connection with the server's lease"

# ------------------------------------------------ clash diagnostics
# A second server of the group on the same virtual port: the shim binds
# the group's real port, which the first server holds.
is "$(st env PORTSHIM_LOG=info "$PORTSHIM" run --ports "$VA" --group dbg-a \
    --range "$RANGE" -- "$PSTCP" bind 127.0.0.1 "$VA")" 1 \
    "a second server in the group fails to bind"
is "$(cat "$T/out")" EADDRINUSE "with EADDRINUSE, errno intact"
like "$T/err" "^portshim\\[[0-9]+\\]: bind tcp 127\\.0\\.0\\.1:$VA failed: Address already in use; held by pid $spid \\(.*pstcp listen 127\\.0\\.0\\.1 $VA\\) group=dbg-a lease $VA->$real\$" \
    "one line names the holder, its group and lease"
is "$(grep -c 'Address already in use;' "$T/err")" 1 \
    "exactly one diagnostic line"
cp "$T/err" "$T/clash-tagged.txt"

# An untagged bind (only port 1 is tagged) to the foreign listener's port.
is "$(st env PORTSHIM_LOG=info "$PORTSHIM" run --ports 1 --range "$RANGE" \
    -- "$PSTCP" bind 127.0.0.1 "$fport")" 1 "an untagged bind clashes too"
is "$(cat "$T/out")" EADDRINUSE "with EADDRINUSE"
like "$T/err" "^portshim\\[[0-9]+\\]: bind tcp 127\\.0\\.0\\.1:$fport failed: Address already in use; held by pid $fpid \\(.*pstcp listen 127\\.0\\.0\\.1 $fport\\)\$" \
    "one line names the foreign holder, without a group"
cp "$T/err" "$T/clash-untagged.txt"
is "$(st "$PORTSHIM" run --ports 1 --range "$RANGE" -- "$PSTCP" bind \
    127.0.0.1 "$fport")" 1 "at the default log level the bind fails too"
check "without a diagnostic line" sh -c "! grep -q 'held by' '$T/err'"

# ------------------------------------------------ a dead group's leases
# A part of the range no other step reaches: a real port is reused over
# TIME_WAIT remnants (docs/time-wait.md), and this step needs a port that
# no connection has used yet, for who to find no socket at all. For the
# same reason its readiness is read from its mapping file and its
# "listening" line, not by connecting (portshim wait's probe could leave
# a TIME_WAIT socket at the real port).
bg "$T/dead.log" "$PORTSHIM" run --ports "$VD" --group dbg-dead \
    --range 27900-27999 --map "$T/dead.map" -- \
    "$PSTCP" listen 127.0.0.1 "$VD"
deadpid=$ps_last_pid
n=600
while [ "$n" -gt 0 ] && ! grep -q '^listening' "$T/dead.log"; do
    sleep 0.1
    n=$((n - 1))
done
dreal=$(map_real "$T/dead.map" tcp "$VD")
[ -n "$dreal" ] || bail_out "the server of group dbg-dead did not start"
# The leases' holder is the group's keeper, run's child.
deadkeeper=$(pgrep -P "$deadpid" | head -n 1)
kill -s KILL -- "-$deadpid"
wait_exit "$deadpid" 60 || bail_out "the killed run did not end"
# The listener died with its process group; wait for its socket to go.
n=600
while [ "$n" -gt 0 ] && listening "$dreal"; do
    sleep 0.1
    n=$((n - 1))
done
st "$PORTSHIM" ls --group dbg-dead >/dev/null
like "$T/out" "^dbg-dead +tcp +$VD +$dreal +[0-9]+ +no +[0-9]+s +-\$" \
    "ls shows the killed run's lease as not alive, without a command"
st "$PORTSHIM" ls --json --group dbg-dead >/dev/null
json "ls --json: alive false, command null" "$T/out" "
assert len(d['leases']) == 1, d
l = d['leases'][0]
assert l['alive'] is False and l['command'] is None
assert l['real'] == $dreal and l['virtual'] == $VD
"
# --listening: wait's probe connection may have left a TIME_WAIT socket
# at the real port, depending on which side closed first.
is "$(st "$PORTSHIM" who --listening "$VD")" 1 \
    "who --listening on the dead group's port exits 1"
like "$T/out" "^lease dbg-dead $VD->$dreal [0-9]+s dead \\(made by pid [0-9]+\\): no tcp socket at port $dreal\$" \
    "and shows the dead lease with no socket"
is "$(cat "$T/err")" "portshim: nothing listens on tcp port $VD" "and says so"
is "$(st "$PORTSHIM" who --listening --json "$VD")" 1 \
    "who --json exits 1 too"
json "who --json: no sockets, the dead lease" "$T/out" "
assert d['sockets'] == []
assert [(l['group'], l['alive']) for l in d['leases']] == [('dbg-dead', False)]
"
is "$(st "$PORTSHIM" gc --dry-run)" 0 "gc --dry-run exits 0"
like "$T/out" "^would free tcp $VD -> $dreal group=dbg-dead \\(holder pid $deadkeeper is gone\\)\$" \
    "gc --dry-run names the dead lease and its holder"
is "$(st "$PORTSHIM" gc)" 0 "gc exits 0"
like "$T/out" "^freed tcp $VD -> $dreal group=dbg-dead \\(holder pid $deadkeeper is gone\\)\$" \
    "gc prints what it freed"
like "$T/out" "^freed [1-9][0-9]* leases?\$" "and how many"
is "$(st "$PORTSHIM" ls --json --group dbg-dead)" 0 "ls after gc exits 0"
json "the lease is gone" "$T/out" "assert d['leases'] == []"
is "$(st "$PORTSHIM" port --group dbg-a "$VA")" 0 \
    "the live group's lease survives gc"

# ------------------------------------------------------------- wait
# wait started before any server of its group exists keeps waiting: the
# positive sign is that it goes to sleep between its checks, again and
# again, without returning. Only then is the server started; wait
# returns with its real port.
bg "$T/wait-w.out" "$PORTSHIM" wait --group dbg-w --timeout 300 "$VW"
waitw=$ps_last_pid
if wait_polling "$waitw" 5 60 && [ ! -s "$T/wait-w.out" ]; then
    ok "wait keeps waiting while no server of the group runs"
else
    not_ok "wait keeps waiting while no server of the group runs"
    diag_file "$T/wait-w.out"
fi
bg "$T/late.log" "$PORTSHIM" run --ports "$VW" --group dbg-w \
    --range "$RANGE" -- "$PSTCP" listen 127.0.0.1 "$VW"
rc=0
wait "$waitw" || rc=$?
wreal=$(cat "$T/wait-w.out")
is "$rc" 0 "wait returns once the delayed server listens"
check "wait prints the delayed server's real port" \
    expr "X$wreal" : 'X[0-9][0-9]*$'
is "$("$PSTCP" connect 127.0.0.1 "$wreal")" "ok pstcp" \
    "which accepts connections"

# Mapped but not listening yet: the server binds, says so, and listens
# only when the test lets it (after saying "listening", so that a wait
# that returned has always been preceded by that line).
bg "$T/slow.log" "$PORTSHIM" run --ports "$VS" --group dbg-s --range "$RANGE" \
    -- "$PY" -c '
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
print("bound", flush=True)
for _ in range(6000):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
print("listening", flush=True)
s.listen()
time.sleep(600)
' "$VS" "$T/slow.go"
n=200
while [ "$n" -gt 0 ] && ! grep -q bound "$T/slow.log"; do
    sleep 0.1
    n=$((n - 1))
done
bg "$T/wait-s.out" "$PORTSHIM" wait --group dbg-s --timeout 300 "$VS"
waits=$ps_last_pid
if wait_polling "$waits" 5 60 && [ ! -s "$T/wait-s.out" ] &&
    ! grep -q listening "$T/slow.log"; then
    ok "wait keeps waiting while the port is mapped but nothing listens"
else
    not_ok "wait keeps waiting while the port is mapped but nothing listens"
    diag_file "$T/wait-s.out"
    diag_file "$T/slow.log"
fi
touch "$T/slow.go"
rc=0
wait "$waits" || rc=$?
sreal=$(cat "$T/wait-s.out")
is "$rc" 0 "wait returns once the server listens"
check "after the server said it listens" grep -q listening "$T/slow.log"
check "and prints the real port, which accepts connections" "$PY" -c '
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10).close()
' "$sreal"

# Timeouts. The run is timed on the monotonic clock from before wait
# starts to after it ends: an interval that holds wait's whole life, so
# that it cannot be shorter than the 0.5 s wait gives itself, however
# slow the machine (there is no upper bound).
is "$("$PY" -c '
import subprocess, sys, time
t0 = time.monotonic_ns()
with open(sys.argv[1], "w") as o, open(sys.argv[2], "w") as e:
    rc = subprocess.call(sys.argv[3:], stdout=o, stderr=e)
t1 = time.monotonic_ns()
print(rc, "late" if t1 - t0 >= 500000000 else "early (%d ns)" % (t1 - t0))
' "$T/out" "$T/err" "$PORTSHIM" wait --group dbg-none --timeout 0.5 "$VW")" \
    "1 late" \
    "wait for a port that nobody maps times out with status 1, not before 0.5 s"
is "$(cat "$T/err")" \
    "portshim: timed out after 0.5s: tcp port $VW is not mapped in group dbg-none" \
    "and says it was never mapped"
is "$(wc -c <"$T/out" | tr -d ' ')" 0 "and prints no port"
bg "$T/mute.log" "$PORTSHIM" run --ports "$VM" --group dbg-m --range "$RANGE" \
    -- "$PY" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
print("bound", flush=True)
time.sleep(600)
' "$VM"
n=100
while [ "$n" -gt 0 ] && ! grep -q bound "$T/mute.log"; do
    sleep 0.1
    n=$((n - 1))
done
is "$(st "$PORTSHIM" wait --group dbg-m --timeout 0.3 "$VM")" 1 \
    "wait for a mapped port that never listens times out"
like "$T/err" "^portshim: timed out after 0\\.3s: tcp port $VM is mapped to [0-9]+ in group dbg-m, but nothing accepts connections on 127\\.0\\.0\\.1:[0-9]+ or \\[::1\\]:[0-9]+\$" \
    "and says what is missing"
is "$(st env PORTSHIM_GROUP=dbg-a "$PORTSHIM" wait --timeout 5 "$VA")" 0 \
    "wait takes the group from PORTSHIM_GROUP"
is "$(cat "$T/out")" "$real" "and prints its real port"

# UDP: a bound socket is ready.
bg "$T/udp.log" "$PORTSHIM" run --ports udp:"$VU" --group dbg-u \
    --range "$RANGE" -- "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
time.sleep(600)
' "$VU"
ureal=$(capture "$PORTSHIM" wait --udp --group dbg-u --timeout 20 "$VU")
check "wait --udp prints the real port of a bound UDP socket" \
    expr "X$ureal" : 'X[0-9][0-9]*$'
is "$(st "$PORTSHIM" who --udp "$VU")" 0 "who --udp by virtual port exits 0"
like "$T/out" "^udp +UNCONN +127\\.0\\.0\\.1:$ureal +0\\.0\\.0\\.0:\\* +[0-9]+ +dbg-u $VU->$ureal " \
    "who --udp shows the unconnected UDP socket and its lease"
st "$PORTSHIM" who --udp --json "$VU" >/dev/null
json "who --udp --json" "$T/out" "
assert d['protocol'] == 'udp'
s = d['sockets'][0]
assert s['protocol'] == 'udp' and s['state'] == 'UNCONN'
assert s['lease']['protocols'] == ['udp'] and s['lease']['real'] == $ureal
"

# ------------------------------------------------ usage errors
for args in "who" "who 0" "who 8080 9090" "who --frob 80" "wait" \
    "wait --timeout x 80" "wait --timeout -1 80" "wait --group 'a b' 80"; do
    # shellcheck disable=SC2086 # the words are the arguments
    eval "set -- $args"
    is "$(st "$PORTSHIM" "$@")" 2 "'$args' is a usage error (2)"
done
is "$(st env -u PORTSHIM_GROUP "$PORTSHIM" wait 80)" 2 \
    "wait without a group is a usage error"

# ------------------------------------------------ not root
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    # As nobody, root's processes cannot be looked into. (The program
    # itself: nobody cannot enter $T, where a sanitizer build's wrapper
    # lives, and who preloads nothing.)
    st setpriv --reuid=65534 --regid=65534 --clear-groups \
        env PORTSHIM_REGISTRY="$T/registry" "$PORTSHIM_BIN" who "$fport" \
        >/dev/null
    like "$T/out" "^tcp +LISTEN +127\\.0\\.0\\.1:$fport +0\\.0\\.0\\.0:\\* +\\? +- +\\(process of uid 0, not visible\\)\$" \
        "as another user, who shows the socket with an unseen process"
    like "$T/err" "^portshim: 1 socket at this port belongs to processes that could not be looked into: the descriptors of [0-9]+ process(es)? \\(of other users, or not dumpable\\) are not readable; run as root to see them\$" \
        "and says what it could not see"
    like "$T/err" "^portshim: leases not shown: " \
        "and that it could not read the registry"
    st setpriv --reuid=65534 --regid=65534 --clear-groups \
        env PORTSHIM_REGISTRY="$T/registry" "$PORTSHIM_BIN" who --json \
        "$fport" >/dev/null
    json "who --json as another user: owner_hidden" "$T/out" "
s = [x for x in d['sockets'] if x['state'] == 'LISTEN'][0]
assert s['owner_hidden'] is True and s['processes'] == []
assert s['uid'] == 0
assert d['hidden_sockets'] == 1 and d['unreadable_processes'] >= 1
assert d['root'] is False and isinstance(d['registry_error'], str)
"
else
    skip "needs root and setpriv to run who as another user" \
        "who as another user"
fi

# ------------------------------------------------ gc --reset
mkdir -m 700 "$T/r"
RREG=$T/r/registry
# shellcheck disable=SC2016 # expanded by the inner shell
is "$(st env PORTSHIM_REGISTRY="$RREG" "$PORTSHIM" run --ports "$VR" \
    --group dbg-r --range "$RANGE" -- sh -c \
    '"$0" bind 127.0.0.1 "$1" >/dev/null && kill -KILL "$PPID"' \
    "$PSTCP" "$VR")" 137 "a run killed after its bind (a lease left behind)"
chmod 644 "$RREG"
is "$(st env PORTSHIM_REGISTRY="$RREG" "$PORTSHIM" gc --reset)" 0 \
    "gc --reset of a refused registry exits 0"
like "$T/out" "^refused: .*registry is accessible to others \\(mode 0644\\), so they could redirect your connections\$" \
    "gc --reset says why the registry is refused"
like "$T/out" "^found: 8[0-9]+ bytes, uid [0-9]+, mode 0644, layout version [0-9]+, created .*, 1 lease in its header" \
    "what its header holds"
like "$T/out" "^found: 1 lease in its table, of groups dbg-r\$" \
    "and which leases it held"
like "$T/out" "^moved the refused registry .*registry aside to registry\\.broken\\.[0-9]+\$" \
    "then moves it aside"
like "$T/out" "^created a fresh registry " "and creates a fresh one"
is "$(st env PORTSHIM_REGISTRY="$RREG" "$PORTSHIM" gc --reset)" 0 \
    "gc --reset of a healthy registry exits 0"
# (The killed run's mapping file is next to the registry: the collection
# removes it, since its group has no lease and no live process.)
is "$(grep -v "^removed mapping file $T/r/dbg-r\.map " "$T/out")" \
    "the registry $RREG opens fine; nothing to reset
freed 0 leases" "and only collects"

# ------------------------------------------------ manuals
for page in "$MAN1" "$MAN7"; do
    name=$(basename "$page")
    is "$(groff -ww -man -z "$page" 2>&1)" "" "$name: groff -ww reports nothing"
    if command -v man >/dev/null 2>&1; then
        MANWIDTH=80 man -l "$page" >"$T/man.out" 2>"$T/man.err" || true
        is "$(cat "$T/man.err")" "" "$name: man -l renders without a warning"
        check "$name: the page has a NAME and a SEE ALSO" \
            sh -c "grep -q '^NAME' '$T/man.out' && grep -q '^SEE ALSO' '$T/man.out'"
    else
        skip "man is not installed" "$name: man -l"
    fi
done
check "Makefile.am installs libportshim.7" \
    grep -q 'man/libportshim\.7' "$PS_SRCDIR/Makefile.am"

# --help and portshim(1) agree. The SYNOPSIS gives each command's options;
# each must be in the command's --help, and each option --help lists must
# be in the page.
awk '
    /^\.SH SYNOPSIS/ { on = 1; next }
    /^\.SH/ { on = 0 }
    on && /^\.B portshim [a-z]/ { cmd = $3; print cmd, "-"; next }
    on && /^\.br/ { cmd = "" }
    on && cmd != "" {
        line = $0
        while (match(line, /\\-\\-[a-z][a-z\\-]*/)) {
            o = substr(line, RSTART, RLENGTH)
            gsub(/\\/, "", o)
            print cmd, o
            line = substr(line, RSTART + RLENGTH)
        }
    }' "$MAN1" >"$T/synopsis"
"$PORTSHIM" --help | awk '
    /^Commands:/ { on = 1; next }
    /^$/ { on = 0 }
    on && /^  [a-z]/ && $1 != "help" { print $1 }' >"$T/commands"
check "portshim --help lists commands" test -s "$T/commands"
while read -r cmd; do
    check "portshim(1) has a synopsis of '$cmd'" \
        grep -q "^$cmd -\$" "$T/synopsis"
done <"$T/commands"
awk '$2 == "-" { print $1 }' "$T/synopsis" >"$T/documented"
while read -r cmd; do
    "$PORTSHIM" "$cmd" --help >"$T/help.$cmd" 2>&1 </dev/null || true
    awk -v c="$cmd" '$1 == c && $2 != "-" { print $2 }' "$T/synopsis" \
        >"$T/man-opts"
    missing=""
    while read -r o; do
        grep -q -- "$o" "$T/help.$cmd" || missing="$missing $o"
    done <"$T/man-opts"
    is "$missing" "" "portshim $cmd --help names the options of portshim(1)"
    grep -E '^ +(-[a-zA-Z], )?--[a-z]' "$T/help.$cmd" |
        grep -oE -- '--[a-z][a-z-]*' | sort -u >"$T/help-opts"
    missing=""
    while read -r o; do
        [ "$o" = --help ] && continue
        m=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
        grep -q -- "$m" "$MAN1" || missing="$missing $o"
    done <"$T/help-opts"
    is "$missing" "" "portshim(1) documents the options of $cmd --help"
done <"$T/documented"

# ------------------------------------------------ bash completion
COMP=$PS_SRCDIR/contrib/bash-completion/portshim
if command -v bash >/dev/null 2>&1; then
    check "the bash completion parses" bash -n "$COMP"
    # complete WORDS...: what the completion offers for the last word,
    # with bash-completion's helpers stubbed (it may not be installed).
    complete_words() {
        bash -c '
            _init_completion() {
                words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
                cur=${words[cword]}; prev=${words[cword-1]}
            }
            _filedir() { :; }
            _command_offset() { :; }
            . "$1"; shift
            COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
            _portshim
            printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
        ' sh "$COMP" "$PORTSHIM" "$@"
    }
    is "$(complete_words w)" "wait who " "it completes commands"
    is "$(complete_words who --)" "--help --json --listening --udp " \
        "and a command's options"
    is "$(complete_words wait --t)" "--timeout " "and a long option"
    is "$(complete_words ls --group dbg-)" "dbg-a dbg-m dbg-s dbg-u dbg-w " \
        "and groups from the registry"
    # Only the options of the help's option lines, not words of its
    # example ("./server --port").
    is "$(complete_words pick --)" \
        "--count --for --group --help --hold --tcp --udp " \
        "pick's options, without the --port of its example"
else
    skip "bash is not installed" "bash completion"
fi

# ------------------------------------------------ zsh completion
ZCOMP=$PS_SRCDIR/contrib/zsh-completion/_portshim
if command -v zsh >/dev/null 2>&1; then
    check "the zsh completion parses" zsh -n "$ZCOMP"
    # zcomplete WORDS...: what the zsh completion offers, with the
    # completion system's builtins stubbed.
    zcomplete() {
        zsh -c '
            _call_program() { shift; "$@"; }
            compadd() {
                if [[ $1 == -a ]]; then print -l -- ${(P)2}
                else [[ $1 == -- ]] && shift; print -l -- "$@"; fi
            }
            _describe() { print -l -- ${(P)4}; }
            _files() { :; }; _normal() { :; }; _command_names() { :; }
            zc=$1; shift; words=("$@"); CURRENT=$#
            . "$zc"
        ' sh "$ZCOMP" "$PORTSHIM" "$@" | sort | tr "\n" " "
    }
    is "$(zcomplete who --)" "--help --json --listening --udp " \
        "zsh: a command's options"
    is "$(zcomplete pick --)" \
        "--count --for --group --help --hold --tcp --udp " \
        "zsh: pick's options, without the --port of its example"
    # shellcheck disable=SC2046 # one word a line
    is "$(printf '%s\n' $(zcomplete w) | grep -c -x -e env -e wait -e who)" \
        3 "zsh: the commands"
else
    skip "zsh is not installed" "zsh completion"
fi

done_testing
