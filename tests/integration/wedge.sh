#!/bin/sh
# SPDX-License-Identifier: MIT
# wedge.sh - nothing wedges the registry's lock, seen from the programs.
#
# A holder stopped with SIGSTOP: `portshim pick` gives up with one line
# naming it (pid, command, stopped) and exits 1; `timeout 2 portshim
# pick` with a long bound is ended by timeout's SIGTERM (exit 124), not
# after its KILL; `doctor` reports the holder and `gc --reset` refuses
# to take the lock from it and leaves the registry in place. A lock left
# by a raw clone() child that took the mutex without a robust list and
# was killed inside after its parent exited: `gc --reset`, `doctor`,
# `pick` all work (the lock is released as the kernel would have). A
# garbage mutex kind: a tagged bind fails with one line, `ls` refuses,
# nobody dies of a signal, and `gc --reset` makes a fresh registry. A
# registry truncated under a running program: 100 failing binds, one log
# line, no SIGBUS. A lost registry descriptor (close_range, dup2 over it)
# and a first bind that met EMFILE: the next tagged bind works.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -x "$PSSTRESS" ] || bail_out "helper $PSSTRESS is missing"
[ -n "${PORTSHIM_LIB:-}" ] || bail_out "PORTSHIM_LIB is not set"
PRELOAD=${PORTSHIM_ASAN_RUNTIME:+$PORTSHIM_ASAN_RUNTIME:}$PORTSHIM_LIB
ASANOPTS=${PORTSHIM_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
REG=$PORTSHIM_REGISTRY
GUARD=${PS_WEDGE_GUARD:-120}
PORTSHIM_RANGE=27000-27999
export PORTSHIM_RANGE

# st [shim] CMD...: prints CMD's exit status (with "shim": CMD runs
# with the shim preloaded) (stdout to $T/out, stderr to $T/err).
# A hang guard bounds CMD: a wedged command is killed (status 137)
# instead of holding up the test; nothing here takes that long.
st() {
    if [ "$1" = shim ]; then
        shift
        set -- env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" "$@"
    fi
    if timeout -k 5 "$GUARD" "$@" >"$T/out" 2>"$T/err"; then
        echo 0
    else
        echo $?
    fi
    # What `is` shows when it fails.
    cp "$T/err" "$T/.capture.err"
}

# wait_line FILE REGEX: waits (bounded) until a line of FILE matches.
wait_line() {
    n=600
    while [ "$n" -gt 0 ] && ! grep -Eq -- "$2" "$1" 2>/dev/null; do
        sleep 0.1
        n=$((n - 1))
    done
    grep -Eq -- "$2" "$1"
}

"$PSSTRESS" regcheck "$REG" >/dev/null

# ------------------------------------------------- a stopped holder
bg "$T/hold.log" "$PSSTRESS" wedge "$REG" hold
HOLDER=$ps_last_pid
wait_line "$T/hold.log" '^held ' || bail_out "the holder never held the lock"
kill -STOP "$HOLDER"

status=$(st env PORTSHIM_LOCK_TIMEOUT=0.5 "$PORTSHIM" pick)
is "$status" 1 "pick gives up on a stopped holder (exit 1)"
like "$T/err" "held by pid $HOLDER \\(psstress\\), stopped" \
    "its one line names the holder, its command and that it is stopped"
diag "$(cat "$T/err")"

# timeout's TERM ends a waiter; the KILL 20 s later would mean it hung.
status=$(st env PORTSHIM_LOCK_TIMEOUT=600 timeout -k 20 2 "$PORTSHIM" pick)
is "$status" 124 "a waiting pick is ended by SIGTERM (timeout 2 pick: 124)"

timeout -k 5 "$GUARD" env PORTSHIM_LOCK_TIMEOUT=0.5 "$PORTSHIM" doctor \
    >"$T/doctor" 2>&1 || true
like "$T/doctor" "cannot take its lock: .*pid $HOLDER .*stopped" \
    "doctor reports the stopped holder and returns"

status=$(st env PORTSHIM_LOCK_TIMEOUT=0.5 "$PORTSHIM" gc --reset)
is "$status" 1 "gc --reset refuses to take the lock from a live holder"
like "$T/err" "pid $HOLDER" "gc --reset names the holder"
if [ -f "$REG" ] && ! ls "$REG".broken.* >/dev/null 2>&1; then
    ok "gc --reset left the registry in place"
else
    not_ok "gc --reset left the registry in place"
fi
kill -CONT "$HOLDER"
kill_tree "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
status=$(st "$PORTSHIM" pick --hold $$)
is "$status" 0 "once the holder is gone, pick works"

# ----------------------------------------- a raw clone child's lock
"$PSSTRESS" wedge "$REG" rawclone >"$T/raw" 2>&1 ||
    bail_out "could not wedge the registry: $(cat "$T/raw")"
# shellcheck disable=SC2046 # two words: the pids
set -- $(sed -n 's/^wedged //p' "$T/raw")
PARENT=$1
CHILD=$2
kill -KILL "$CHILD"
diag "lock taken by raw clone child $CHILD of $PARENT (exited), child killed"
status=$(st env PORTSHIM_LOCK_TIMEOUT=5 "$PORTSHIM" gc --reset)
is "$status" 0 "gc --reset works on a lock left by a dead raw clone child"
timeout -k 5 "$GUARD" env PORTSHIM_LOCK_TIMEOUT=5 "$PORTSHIM" doctor \
    >"$T/doctor" 2>&1 || true
like "$T/doctor" "registry .*: consistent" "doctor finds it consistent"
status=$(st env PORTSHIM_LOCK_TIMEOUT=5 "$PORTSHIM" pick --hold $$)
is "$status" 0 "pick works"

# ----------------------------------------------- a garbage mutex kind
"$PSSTRESS" wedge "$REG" kind
P=$(free_port 41000 41999)
status=$(st shim PORTSHIM_PORTS="$P" PORTSHIM_GROUP=w "$PSTCP" bind 127.0.0.1 "$P")
is "$status" 1 "a tagged bind fails on a garbage mutex (no SIGILL: exit 1)"
is "$(grep -c '^portshim\[' "$T/err")" 1 "with one line"
like "$T/err" "lock is corrupt" "saying the lock is corrupt"
status=$(st "$PORTSHIM" ls)
is "$status" 1 "ls refuses it (exit 1, no signal)"
status=$(st "$PORTSHIM" gc --reset)
is "$status" 0 "gc --reset replaces it"
like "$T/out" "created a fresh registry" "with a fresh one"
status=$(st shim PORTSHIM_PORTS="$P" PORTSHIM_GROUP=w "$PSTCP" bind 127.0.0.1 "$P")
is "$status" 0 "the tagged bind works again"

# -------------------------------------------- truncated while running
P2=$(free_port 42000 42999)
status=$(st shim PORTSHIM_PORTS="$P,$P2" PORTSHIM_GROUP=w \
    PORTSHIM_ON_ERROR=fail "$PSSTRESS" lostfd shrink "$P" "$P2")
is "$status" 0 "a program whose registry is truncated under it lives"
is "$(grep -c '^again ' "$T/out")" 99 "its 100 binds after the shrink were answered"
is "$(grep -c '^portshim\[' "$T/err")" 1 "with one log line in all"
like "$T/err" "truncated" "saying the file was truncated"
rm -f "$REG"

# ----------------------------------------------- lost descriptors
for mode in close_range dup2 emfile; do
    status=$(st shim PORTSHIM_PORTS="$P,$P2" PORTSHIM_GROUP="fd$mode" \
        "$PSSTRESS" lostfd "$mode" "$P" "$P2")
    is "$status" 0 "after $mode, the next tagged bind works"
    like "$T/out" "^second OK" "$mode: second bind OK"
done

done_testing
