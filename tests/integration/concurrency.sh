#!/bin/sh
# SPDX-License-Identifier: MIT
# concurrency.sh - eight processes of four threads each, every process in a
# group of its own under `portshim run`, bind tagged ports at the same
# moment: 100 different virtual ports per thread, 3200 binds in all, each
# socket kept open. Every socket sets SO_REUSEADDR and SO_REUSEPORT, so
# the kernel would let two groups share a real port: only the registry
# keeps them apart.
#
# Afterwards, on the sockets themselves (each process looks up the real
# port of each of its sockets by inode in /proc/net), in the registry (all
# invariants, and the same (group, vport, real) triples) and in the
# mapping files: no real port is held twice, every group sees what it
# asked for. No deadlock: everything ends within `timeout`. When the
# runs end, their groups' leases are gone.
#
# The real ports come from a range of their own (13000-16999, --range),
# away from the default one that the other tests, running at the same
# time under `make -j`, take their ports from.
#
# PS_STORM_PROCS, PS_STORM_THREADS and PS_STORM_PER change the sizes.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -x "$PSSTRESS" ] || bail_out "helper $PSSTRESS is missing"

PROCS=${PS_STORM_PROCS:-8}
THREADS=${PS_STORM_THREADS:-4}
PER=${PS_STORM_PER:-100}
VBASE=10000
VLAST=$((VBASE + THREADS * PER - 1))
BINDS=$((PROCS * THREADS * PER))
GO=$T/go
STOP=$T/stop
LIMIT=120
RLO=13000
RHI=16999

# wait_all PATTERN TIMEOUT: waits until every process's log has a line
# matching PATTERN; false on timeout.
wait_all() {
    n=$(($2 * 10))
    while [ "$n" -gt 0 ]; do
        missing=0
        i=1
        while [ "$i" -le "$PROCS" ]; do
            grep -q "$1" "$T/p$i.log" 2>/dev/null || missing=1
            i=$((i + 1))
        done
        [ "$missing" = 0 ] && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

t0=$(date +%s)
pids=""
i=1
while [ "$i" -le "$PROCS" ]; do
    bg "$T/p$i.log" timeout "$LIMIT" "$PORTSHIM" run \
        --ports "$VBASE-$VLAST" --range "$RLO-$RHI" --group "storm$i" \
        --map "$T/storm$i.map" \
        -- "$PSSTRESS" storm "$THREADS" "$PER" "$VBASE" "$GO" "$STOP"
    pids="$pids $ps_last_pid"
    i=$((i + 1))
done

if wait_all '^ready$' 30; then
    ok "$PROCS processes x $THREADS threads are ready"
else
    not_ok "$PROCS processes x $THREADS threads are ready"
    for f in "$T"/p*.log; do diag_file "$f"; done
    bail_out "the processes did not start"
fi

touch "$GO"
if wait_all '^done ' "$LIMIT"; then
    ok "all $BINDS binds ended (no deadlock)"
else
    not_ok "all $BINDS binds ended (no deadlock)"
    for f in "$T"/p*.log; do diag_file "$f"; done
    bail_out "binds did not end within $LIMIT s"
fi
t1=$(date +%s)

# One table of every socket: GROUP PROTO VPORT REAL.
: >"$T/sockets"
errors=0
i=1
while [ "$i" -le "$PROCS" ]; do
    if grep -q '^error' "$T/p$i.log" || grep -q '^portshim\[' "$T/p$i.log"
    then
        errors=$((errors + 1))
        diag_file "$T/p$i.log"
    fi
    awk -v g="storm$i" '$1 == "tcp" || $1 == "udp" {
        print g, $1, $2, $3 }' "$T/p$i.log" >>"$T/sockets"
    i=$((i + 1))
done
is "$errors" 0 "no process reports an error or a log line"
is "$(wc -l <"$T/sockets" | tr -d ' ')" "$BINDS" \
    "$BINDS sockets are bound, each to its virtual port as getsockname says"

dups=$(awk '{ print $4 }' "$T/sockets" | sort -n | uniq -d | head -5 |
    tr '\n' ' ')
is "$dups" "" "no real port is held by two sockets (kernel's view)"
inrange=$(awk -v lo="$RLO" -v hi="$RHI" '$4 < lo || $4 > hi' "$T/sockets" |
    wc -l | tr -d ' ')
is "$inrange" 0 "every real port is in the range $RLO-$RHI"

# The registry: invariants, and exactly the same triples.
"$PSSTRESS" regcheck "$PORTSHIM_REGISTRY" >"$T/registry.txt" 2>&1 || true
is "$(tail -n 1 "$T/registry.txt")" "check ok" \
    "the registry passes every invariant check"
awk '$2 == "group" && $1 ~ /^storm/ { print $1, $3, $4 }' \
    "$T/registry.txt" | sort >"$T/leases"
awk '{ print $1, $3, $4 }' "$T/sockets" | sort >"$T/socket-leases"
if cmp -s "$T/leases" "$T/socket-leases"; then
    ok "the registry holds exactly the sockets' (group, vport, real)"
else
    not_ok "the registry holds exactly the sockets' (group, vport, real)"
    diff "$T/leases" "$T/socket-leases" | head -20 | sed 's/^/# /'
fi

# The mapping files say the same, protocol by protocol.
bad=""
i=1
while [ "$i" -le "$PROCS" ]; do
    awk 'NR > 1 { print $1, $2, $3 }' "$T/storm$i.map" 2>/dev/null |
        sort >"$T/map$i"
    awk -v g="storm$i" '$1 == g { print $2, $3, $4 }' "$T/sockets" |
        sort >"$T/want$i"
    cmp -s "$T/map$i" "$T/want$i" || bad="$bad storm$i"
    i=$((i + 1))
done
is "$bad" "" "each group's mapping file lists its sockets"

elapsed=$((t1 - t0))
bind_s=$(awk '/^done / { if ($3 > m) m = $3 } END { print m }' "$T"/p*.log)
diag "$PROCS processes x $THREADS threads x $PER ports: $BINDS binds in" \
    "${bind_s}s (slowest process), ${elapsed}s from start to all bound"

# The runs end; each releases its group.
touch "$STOP"
failed=0
for pid in $pids; do
    wait "$pid" || failed=$((failed + 1))
done
is "$failed" 0 "every run exits 0"
"$PSSTRESS" regcheck "$PORTSHIM_REGISTRY" >"$T/registry2.txt" 2>&1 || true
left=$(grep -c '^storm' "$T/registry2.txt" || true)
is "$left" 0 "after the runs, none of their leases is left"
is "$(tail -n 1 "$T/registry2.txt")" "check ok" \
    "the registry still passes every check"

done_testing
