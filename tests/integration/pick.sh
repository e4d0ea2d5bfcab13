#!/bin/sh
# SPDX-License-Identifier: MIT
# pick.sh - `portshim pick` and `portshim release`.
#
# 16 shells call `portshim pick` 50 times each, all at once, while
# programs under `portshim run` bind tagged ports in the same registry
# (a storm of simultaneous binds and two long runs of one bind after
# another): the 800 picked ports are distinct, each is bindable when it
# is returned, and none is also the real port of a shim bind (checked in
# the registry and on the shim's sockets). The leases belong to the
# shells that asked; SIGKILLed shells' leases are freed by gc, live
# ones' never. Then, on tiny ranges: a dead holder's ports serve the next
# pick that needs room, --for expiry, release of one's own and of
# someone else's leases (--force, --hold), exhaustion, bad usage, and
# probes that the preload library does not rewrite.
#
# PS_PICK_PROCS and PS_PICK_PER change the sizes.

# shellcheck disable=SC2016 # the inner shells expand their own arguments
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -x "$PSSTRESS" ] || bail_out "helper $PSSTRESS is missing"

PROCS=${PS_PICK_PROCS:-16}
PER=${PS_PICK_PER:-50}
PICKS=$((PROCS * PER))
STORMS=4
STORM_THREADS=2
STORM_PER=100
CHURN=1000
GO=$T/go
STOP=$T/stop
# Upper bound for each background run: generous, for sanitizer builds on a
# loaded machine (the runs end as soon as the picks are done).
LIMIT=400
# A range of the test's own, away from the ranges of the other tests
# and above where the default range's few users start (20000), so that a
# concurrent test's sockets rarely meet ours.
RANGE_LO=22000
RANGE_HI=26999
PORTSHIM_RANGE=$RANGE_LO-$RANGE_HI
export PORTSHIM_RANGE

# st CMD...: prints CMD's exit status (stdout to $T/out, stderr to $T/err).
st() {
    if "$@" >"$T/out" 2>"$T/err"; then
        echo 0
    else
        echo $?
    fi
}

# wait_lines PATTERN COUNT TIMEOUT FILE...: waits until COUNT of FILEs
# have a line matching PATTERN, for TIMEOUT seconds of wall-clock time
# (a loaded machine makes every round of the loop slower).
wait_lines() {
    wl_pat=$1
    wl_want=$2
    wl_end=$(($(date +%s) + $3))
    shift 3
    while :; do
        wl_have=0
        for wl_f in "$@"; do
            grep -q "$wl_pat" "$wl_f" 2>/dev/null &&
                wl_have=$((wl_have + 1))
        done
        [ "$wl_have" -ge "$wl_want" ] && return 0
        [ "$(date +%s)" -lt "$wl_end" ] || return 1
        sleep 0.1
    done
}

# holder_of PORT: the holder pid of PORT's lease in `ls --json` (or "").
holder_of() {
    "$PORTSHIM" ls --json | "$PY" -c '
import json, sys
port = int(sys.argv[1])
for l in json.load(sys.stdin)["leases"]:
    if l["real"] == port:
        print(l["holder_pid"])' "$1"
}

# ------------------------------------------------- concurrent picks
# A picker: waits for GO, then picks PER ports one call at a time,
# binding each at once (pstcp, no SO_REUSEADDR) to show it is free, and
# stays alive (the lease's holder is this shell) until STOP.
cat >"$T/picker.sh" <<'EOF'
while [ ! -e "$GO" ]; do sleep 0.05; done
i=0
while [ "$i" -lt "$PER" ]; do
    p=$("$PORTSHIM" pick) || { echo "pick failed"; exit 1; }
    if b=$("$PSTCP" bind 0.0.0.0 "$p") && [ "$b" = "$p" ]; then
        echo "picked $p"
    else
        echo "unbindable $p $b"
    fi
    i=$((i + 1))
done
echo done
while [ ! -e "$STOP" ]; do sleep 0.1; done
EOF
export GO STOP PER PORTSHIM PSTCP

storm_pids=""
i=1
while [ "$i" -le "$STORMS" ]; do
    bg "$T/storm$i.log" timeout "$LIMIT" "$PORTSHIM" run \
        --ports 10000-10999 --group "storm$i" --map "$T/storm$i.map" \
        -- "$PSSTRESS" storm "$STORM_THREADS" "$STORM_PER" 10000 "$GO" \
        "$STOP"
    storm_pids="$storm_pids $ps_last_pid"
    i=$((i + 1))
done
# Two runs that bind one port after another, for as long as the picks
# last (each bind is an allocation in the registry). A churn stops at its
# first failed bind: on a busy machine a process outside the registry
# (another test) may hold a number the churn's group already leased.
for i in 1 2; do
    bg "$T/churn$i.log" timeout "$LIMIT" "$PORTSHIM" run \
        --ports 12000-12999 --group "churn$i" --map "$T/churn$i.map" \
        -- sh -c 'while [ ! -e "$1" ]; do sleep 0.05; done
            "$2" churn "$3" 12000; echo "churn-status $?"
            while [ ! -e "$4" ]; do sleep 0.1; done' churn "$GO" \
        "$PSSTRESS" "$CHURN" "$STOP"
    storm_pids="$storm_pids $ps_last_pid"
done
picker_pids=""
picker_logs=""
i=1
while [ "$i" -le "$PROCS" ]; do
    bg "$T/picker$i.log" sh "$T/picker.sh"
    picker_pids="$picker_pids $ps_last_pid"
    picker_logs="$picker_logs $T/picker$i.log"
    i=$((i + 1))
done
storm_logs=""
i=1
while [ "$i" -le "$STORMS" ]; do
    storm_logs="$storm_logs $T/storm$i.log"
    i=$((i + 1))
done
# shellcheck disable=SC2086 # lists of file names without blanks
if wait_lines '^ready$' "$STORMS" 30 $storm_logs; then
    ok "$STORMS shim storms are ready"
else
    not_ok "$STORMS shim storms are ready"
    for f in $storm_logs; do diag_file "$f"; done
    bail_out "the storms did not start"
fi

t0=$(date +%s)
touch "$GO"
# shellcheck disable=SC2086
if wait_lines '^done$' "$PROCS" "$LIMIT" $picker_logs &&
    wait_lines '^done ' "$STORMS" "$LIMIT" $storm_logs &&
    wait_lines '^churn-status ' 2 "$LIMIT" "$T/churn1.log" "$T/churn2.log"
then
    ok "$PICKS picks and the shim binds all ended"
else
    not_ok "$PICKS picks and the shim binds all ended"
    for f in $picker_logs $storm_logs "$T/churn1.log"; do
        diag_file "$f"
    done
    bail_out "picks did not end within $LIMIT s"
fi
t1=$(date +%s)
diag "$PICKS picks by $PROCS shells in $((t1 - t0)) s, alongside" \
    "$((STORMS * STORM_THREADS * STORM_PER)) storm binds and" \
    "$((2 * CHURN)) churn binds"

# shellcheck disable=SC2086
cat $picker_logs >"$T/picks.log"
awk '$1 == "picked" { print $2 }' "$T/picks.log" | sort -n >"$T/picked"
is "$(wc -l <"$T/picked" | tr -d ' ')" "$PICKS" \
    "every one of the $PICKS picks printed a port that was bindable"
is "$(grep -c -e '^unbindable' -e '^pick failed' "$T/picks.log" || true)" 0 \
    "no pick failed and no picked port was taken when returned"
is "$(uniq -d "$T/picked" | head -5 | tr '\n' ' ')" "" \
    "all $PICKS picked ports are distinct"
is "$(awk -v lo=$RANGE_LO -v hi=$RANGE_HI '$1 < lo || $1 > hi' \
    "$T/picked" | wc -l | tr -d ' ')" 0 "every picked port is in PORTSHIM_RANGE"

# The registry, with every run and picker still alive.
"$PSSTRESS" regcheck "$PORTSHIM_REGISTRY" >"$T/reg.txt" 2>&1 || true
is "$(tail -n 1 "$T/reg.txt")" "check ok" \
    "the registry passes every invariant check"
awk '$2 == "pick" { print $4 }' "$T/reg.txt" | sort -n >"$T/reg-picks"
if cmp -s "$T/picked" "$T/reg-picks"; then
    ok "the registry's pick leases are exactly the picked ports"
else
    not_ok "the registry's pick leases are exactly the picked ports"
    diff "$T/picked" "$T/reg-picks" | head -10 | sed 's/^/# /'
fi
awk '$2 == "pick" { print $5 }' "$T/reg.txt" | sort -u >"$T/reg-holders"
for pid in $picker_pids; do echo "$pid"; done | sort -u >"$T/picker-pids"
if cmp -s "$T/reg-holders" "$T/picker-pids"; then
    ok "each pick lease is held by the shell that asked"
else
    not_ok "each pick lease is held by the shell that asked"
    diff "$T/reg-holders" "$T/picker-pids" | head -10 | sed 's/^/# /'
fi
awk '$2 == "group" { print $4 }' "$T/reg.txt" | sort -n >"$T/group-reals"
want_groups=$((STORMS * STORM_THREADS * STORM_PER + 2 * CHURN))
if grep -q '^churn-status 0$' "$T/churn1.log" &&
    grep -q '^churn-status 0$' "$T/churn2.log"; then
    is "$(wc -l <"$T/group-reals" | tr -d ' ')" "$want_groups" \
        "the shim made $want_groups group leases meanwhile"
else
    diag_file "$T/churn1.log"
    diag_file "$T/churn2.log"
    skip "a churn met a port held outside the registry" \
        "the shim made $want_groups group leases meanwhile"
fi
is "$(comm -12 "$T/picked" "$T/group-reals" | head -5 | tr '\n' ' ')" "" \
    "no picked port is also the real port of a shim bind (registry)"
# shellcheck disable=SC2086
awk '$1 == "tcp" || $1 == "udp" { print $3 }' $storm_logs | sort -n |
    uniq >"$T/storm-reals"
is "$(wc -l <"$T/storm-reals" | tr -d ' ')" \
    "$((STORMS * STORM_THREADS * STORM_PER))" \
    "the storms hold their sockets on distinct real ports"
is "$(comm -12 "$T/picked" "$T/storm-reals" | head -5 | tr '\n' ' ')" "" \
    "no picked port is a port a shim socket is bound to (kernel's view)"

# Every picked port is still free for TCP and UDP, IPv4 and IPv6, while
# its lease keeps the registry's users away.
"$PY" - "$T/picked" >"$T/bindable.txt" 2>&1 <<'EOF' || true
import socket, sys
bad = []
has6 = socket.has_ipv6
for line in open(sys.argv[1]):
    port = int(line)
    fams = [(socket.AF_INET, "0.0.0.0")]
    if has6:
        fams.append((socket.AF_INET6, "::"))
    socks = []
    try:
        for fam, addr in fams:
            for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(fam, typ)
                socks.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, port))
    except OSError as e:
        bad.append("%d: %s" % (port, e))
    finally:
        for s in socks:
            s.close()
print("bad %d" % len(bad))
for b in bad[:5]:
    print(b)
EOF
is "$(head -n 1 "$T/bindable.txt")" "bad 0" \
    "every picked port binds for TCP and UDP on 0.0.0.0 and [::]"

# Four pickers are killed with SIGKILL: gc frees their leases and only
# theirs.
killed=0
killed_ports=0
for pid in $picker_pids; do
    [ "$killed" -ge 4 ] && break
    n=$(awk -v p="$pid" '$2 == "pick" && $5 == p' "$T/reg.txt" | wc -l)
    killed_ports=$((killed_ports + n))
    kill -KILL "$pid"
    wait_exit "$pid" 5 || true
    killed=$((killed + 1))
done
live_before=$(awk '$2 == "pick"' "$T/reg.txt" | wc -l | tr -d ' ')
"$PORTSHIM" gc --dry-run >"$T/gc-dry.txt" 2>&1 || true
is "$(tail -n 1 "$T/gc-dry.txt")" "would free $killed_ports leases" \
    "gc --dry-run would free the $killed_ports leases of the killed shells"
"$PORTSHIM" gc >"$T/gc.txt" 2>&1 || true
is "$(tail -n 1 "$T/gc.txt")" "freed $killed_ports leases" \
    "gc frees the killed shells' leases"
check "gc says which pick ports it freed and why" \
    grep -q '^freed pick port [0-9]* (holder pid [0-9]* is gone)$' \
    "$T/gc.txt"
"$PSSTRESS" regcheck "$PORTSHIM_REGISTRY" >"$T/reg2.txt" 2>&1 || true
is "$(awk '$2 == "pick"' "$T/reg2.txt" | wc -l | tr -d ' ')" \
    "$((live_before - killed_ports))" \
    "the live shells keep every one of their leases"
"$PORTSHIM" gc >"$T/gc2.txt" 2>&1 || true
is "$(tail -n 1 "$T/gc2.txt")" "freed 0 leases" \
    "a second gc frees nothing: live holders' leases never go"

touch "$STOP"
failed=0
for pid in $storm_pids; do
    wait "$pid" || failed=$((failed + 1))
done
is "$failed" 0 "every shim run exits 0"
for pid in $picker_pids; do wait_exit "$pid" 10 || true; done
"$PORTSHIM" gc >/dev/null 2>&1 || true
"$PSSTRESS" regcheck "$PORTSHIM_REGISTRY" >"$T/reg3.txt" 2>&1 || true
is "$(grep -vc '^check' "$T/reg3.txt" || true)" 0 \
    "when every holder is gone, no lease is left"

# ------------------------------------------- a holder that dies, tiny range
# Three free ports next to each other, for ranges that run out.
base=""
for try in 29000 29010 29020 29030 29040 29050; do
    if "$PSTCP" free "$try" "$try" >/dev/null 2>&1 &&
        "$PSTCP" free $((try + 1)) $((try + 1)) >/dev/null 2>&1 &&
        "$PSTCP" free $((try + 2)) $((try + 2)) >/dev/null 2>&1; then
        base=$try
        break
    fi
done
[ -n "$base" ] || bail_out "no three free ports near 29000"
TINY=$base-$((base + 2))

# A holder: picks the whole tiny range for itself, then waits.
bg "$T/holder.log" env PORTSHIM_RANGE="$TINY" sh -c \
    '"$1" pick --count 3 && echo held && exec sleep 300' holder "$PORTSHIM"
holder=$ps_last_pid
wait_lines '^held$' 1 10 "$T/holder.log" || diag_file "$T/holder.log"
is "$(grep -c '^[0-9]' "$T/holder.log")" 3 "a holder picks a range of 3"
is "$(holder_of "$base")" "$holder" "the lease belongs to the holder shell"

is "$(st env PORTSHIM_RANGE="$TINY" "$PORTSHIM" pick)" 1 \
    "a full range: pick exits 1"
check "... saying the range is used up" grep -q \
    "^portshim: no free port left in PORTSHIM_RANGE $TINY for 1 port" \
    "$T/err"
is "$(wc -l <"$T/out" | tr -d ' ')" 0 "... printing no port"
is "$(st env PORTSHIM_RANGE="$TINY" "$PORTSHIM" pick --count 4)" 1 \
    "asking for more ports than the range has exits 1"

kill -KILL "$holder"
wait_exit "$holder" 5 || true
got=$(capture env PORTSHIM_RANGE="$TINY" "$PORTSHIM" pick --count 3 |
    sort -n |
    tr '\n' ' ')
is "$got" "$base $((base + 1)) $((base + 2)) " \
    "the killed holder's ports serve the next pick that needs room"
is "$(holder_of "$base")" "$$" "... and now belong to the new holder"
is "$(st "$PORTSHIM" release "$base" $((base + 1)) $((base + 2)))" 0 \
    "the holder releases its own ports"
is "$(holder_of "$base")" "" "... and their leases are gone"

# ------------------------------------------------------------ --for
# alive_of PORT: the "alive" of PORT's lease in `ls --json` ("[True]").
alive_of() {
    "$PORTSHIM" ls --json | "$PY" -c '
import json, sys
print([l["alive"] for l in json.load(sys.stdin)["leases"]
       if l["real"] == int(sys.argv[1])])' "$1"
}
# An hour: alive at the next call however slow the machine is.
long=$(capture "$PORTSHIM" pick --for 3600 --group timed)
[ -n "$long" ] || diag_file "$T/.capture.err"
check "a --for lease is listed with its label" sh -c \
    "\"\$1\" ls --group timed | grep -q ' $long '" ls "$PORTSHIM"
is "$(alive_of "$long")" "[True]" "... alive while its time lasts"
# A second: wait for it to run out (bounded: 60 s, a safety net only).
p=$(capture "$PORTSHIM" pick --for 1 --group timed)
[ -n "$p" ] || diag_file "$T/.capture.err"
i=0
while [ "$i" -lt 600 ]; do
    alive=$(alive_of "$p")
    [ "$alive" = "[True]" ] || break
    sleep 0.1
    i=$((i + 1))
done
is "$alive" "[False]" "... dead once it ran out, though its holder lives"
is "$(alive_of "$long")" "[True]" "... while a longer one of the same holder lives on"
"$PORTSHIM" gc >"$T/gc-for.txt" 2>&1 || true
check "gc frees it as expired" \
    grep -q "^freed pick port $p group=timed (expired)$" "$T/gc-for.txt"
check "... and not the longer one" \
    sh -c "! grep -q ' $long ' '$T/gc-for.txt'"
is "$(st "$PORTSHIM" release "$long")" 0 "the longer one is released"

# -------------------------------------------------- release: whose lease
p=$(capture "$PORTSHIM" pick)
is "$(sh -c '"$1" release "$2"' sh "$PORTSHIM" "$p" >/dev/null 2>&1;
    echo $?)" 0 "a child of the holder shell may release its lease"
p=$(capture "$PORTSHIM" pick)
is "$( ( "$PORTSHIM" release "$p" ) >/dev/null 2>&1; echo $?)" 0 \
    "so may a subshell"
is "$(st "$PORTSHIM" release "$p")" 1 "releasing it again exits 1"
check "... saying it has no lease" \
    grep -q "^portshim: port $p has no lease$" "$T/err"

bg "$T/other.log" sh -c '"$1" pick && exec sleep 300' other "$PORTSHIM"
other=$ps_last_pid
wait_lines '^[0-9]' 1 10 "$T/other.log"
q=$(head -n 1 "$T/other.log")
is "$(st "$PORTSHIM" release "$q")" 1 \
    "another shell's lease cannot be released"
want="^portshim: port $q is held by process $other, not by this shell"
check "... the message names its holder and --force" sh -c \
    'grep -q "$1" "$2" && grep -q "use --force" "$2"' grep "$want" "$T/err"
is "$(holder_of "$q")" "$other" "... and the lease stays"
is "$(st "$PORTSHIM" release --hold "$other" "$q")" 0 \
    "release --hold PID releases PID's lease"
p=$(capture "$PORTSHIM" pick --hold "$other")
is "$(holder_of "$p")" "$other" "pick --hold PID leases to PID"
is "$(st "$PORTSHIM" release --force "$p")" 0 "release --force releases it"
is "$(holder_of "$p")" "" "... and the lease is gone"

# A group lease (made by a bind) is not release's.
bg "$T/srv.log" "$PORTSHIM" run --ports 8080 --group relg \
    --map "$T/relg.map" -- "$PSTCP" listen 127.0.0.1 8080
if wait_for_map "$T/relg.map" 8080 10; then
    r=$(map_real "$T/relg.map" tcp 8080)
    is "$(st "$PORTSHIM" release --force "$r")" 1 \
        "a group's port cannot be released, even with --force"
    check "... the message says it ends with its group" \
        grep -q "^portshim: port $r is group relg's port for 8080" "$T/err"
else
    not_ok "a group's port cannot be released (the server did not start)"
    diag_file "$T/srv.log"
fi
kill_tree "$ps_last_pid"

# ------------------------------------------------------------ usage
for args in "--count 0" "--count 1025" "--count x" "--for 0" "--for 1.5" \
    "--group bad/name" "--hold 0" "--hold x" "extra"; do
    # shellcheck disable=SC2086 # the arguments are split on purpose
    is "$(st "$PORTSHIM" pick $args)" 2 "pick $args is a usage error"
done
is "$(st "$PORTSHIM" pick --hold 2147483647)" 1 \
    "pick --hold with no such process exits 1"
check "... saying so" grep -q "no such process" "$T/err"
is "$(st env PORTSHIM_RANGE=9-1 "$PORTSHIM" pick)" 2 \
    "an invalid PORTSHIM_RANGE is a usage error"
check "... naming the variable" grep -q "PORTSHIM_RANGE" "$T/err"
is "$(st "$PORTSHIM" release)" 2 "release without a port is a usage error"
is "$(st "$PORTSHIM" release 70000)" 2 "release 70000 is a usage error"
is "$(st "$PORTSHIM" pick --help)" 0 "pick --help exits 0"
check "pick --help prints its usage" grep -q '^Usage: portshim pick' "$T/out"
is "$(st "$PORTSHIM" release --help)" 0 "release --help exits 0"

# -------------------------------------------- pick under the preload
# A wrapped script tags every port: the probes must still see the real
# numbers (no rewriting, no waiting for the lock they hold), and the
# lease is a pick lease, not a group's.
rc=0
timeout 20 "$PORTSHIM" run --group wrapped --map "$T/wrapped.map" -- sh -c \
    '"$1" pick --count 5 --hold "$2"' run "$PORTSHIM" "$$" \
    >"$T/wrapped.out" 2>"$T/wrapped.err" || rc=$?
is "$rc" 0 "pick under 'portshim run --ports all' works"
diag_file "$T/wrapped.err"
is "$(wc -l <"$T/wrapped.out" | tr -d ' ')" 5 "... and prints 5 ports"
bad=""
while read -r p; do
    [ "$(holder_of "$p")" = "$$" ] || bad="$bad $p"
done <"$T/wrapped.out"
is "$bad" "" "... each a pick lease of the requested holder"
map_lines=$(grep -vc '^#' "$T/wrapped.map" 2>/dev/null || true)
is "${map_lines:-0}" 0 \
    "... and the wrapped group leased nothing (its mapping is empty)"

# Under the seccomp supervisor, every raw bind is stopped for the
# supervisor; the probes must still see the real numbers and not wait
# for the registry lock that the probing pick holds.
rc=0
timeout 20 "$PORTSHIM" run --supervise --group svd --map "$T/svd.map" -- \
    sh -c '"$1" pick --count 5 --hold "$2"' run "$PORTSHIM" "$$" \
    >"$T/svd.out" 2>"$T/svd.err" || rc=$?
if [ "$rc" = 125 ]; then
    skip "the supervisor cannot run here" \
        "pick under 'portshim run --supervise' works"
else
    is "$rc" 0 "pick under 'portshim run --supervise' works (no deadlock)"
    diag_file "$T/svd.err"
    bad=""
    while read -r p; do
        [ "$(holder_of "$p")" = "$$" ] || bad="$bad $p"
    done <"$T/svd.out"
    is "$(wc -l <"$T/svd.out" | tr -d ' ')/$bad" "5/" \
        "... and leases 5 ports to the requested holder"
fi

done_testing
