#!/bin/sh
# SPDX-License-Identifier: MIT
# hostile_supervise.sh - a process that drops privileges under a root
# supervisor cannot steer it. Under `portshim run --supervise` as root, a
# static server switches to user 65534 and names, in its own environment,
# a root file as its mapping file, a registry of its choosing, port 81 as
# its range and another group: none of it takes effect (the file is
# untouched, no registry is made, port 81 is not bound; the server gets a
# port of root's run in root's group). And a root run whose own range is
# 81-81 does not bind port 81 for a process without
# CAP_NET_BIND_SERVICE: its bind fails with EACCES, as it would without
# portshim. Needs root, setpriv and a static C compiler.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

VPORT=8080
CC=${CC:-cc}
PRIV=81

[ "$(id -u)" = 0 ] || skip_all "needs root to supervise another user's process"
command -v setpriv >/dev/null 2>&1 || skip_all "setpriv is not installed"
if ! "$PORTSHIM" run --supervise -- true 2>"$T/probe.err"; then
    skip_all "--supervise cannot run here: $(head -n 1 "$T/probe.err")"
fi
PSSV=$T/pssv
if ! "$CC" -static -O2 -o "$PSSV" "$PS_SRCDIR/tests/helpers/pssv.c" \
    2>"$T/cc.err"; then
    skip_all "cannot link a static program ($CC -static): \
$(head -n 1 "$T/cc.err")"
fi
listening "$PRIV" && skip_all "port $PRIV is in use on this host"
# User 65534 must reach the static server in $T.
chmod 755 "$T"

DROP="setpriv --reuid=65534 --regid=65534 --clear-groups"

# ------------------------------------------------ a steering environment
printf 'root secret\n' >"$T/secret"
chmod 600 "$T/secret"
# shellcheck disable=SC2086 # $DROP is a command prefix
bg "$T/steer.log" "$PORTSHIM" run --supervise --ports "$VPORT" \
    --group root-run --map "$T/root.map" -- \
    $DROP env PORTSHIM_MAP_FILE="$T/secret" \
    PORTSHIM_REGISTRY="$T/evil.reg" PORTSHIM_RANGE="$PRIV-$PRIV" \
    PORTSHIM_GROUP=evil PORTSHIM_PORTS=all "$PSSV" serve "$VPORT" steered 1
steer=$ps_last_pid
wait_for_map "$T/root.map" "$VPORT" 20 || true
real=$(map_real "$T/root.map" tcp "$VPORT")
if [ -n "$real" ] && [ "$real" -ge 20000 ] && [ "$real" -le 32767 ] &&
    listening "$real"; then
    ok "the dropped server got a port of root's run (tcp $VPORT -> $real)"
else
    not_ok "the dropped server got a port of root's run"
    diag_file "$T/steer.log"
    diag_file "$T/root.map"
fi
is "$(cat "$T/secret")" "root secret" \
    "the root file the process named as its mapping file is untouched"
check "no registry is made where the process said" [ ! -e "$T/evil.reg" ]
check "port $PRIV, the process's own range, is not bound" \
    eval "! listening $PRIV"
is "$("$PORTSHIM" port --group evil "$VPORT" 2>/dev/null || true)" "" \
    "the group the process named has no lease"
# Let the one-connection server finish.
[ -n "$real" ] && "$PSTCP" connect 127.0.0.1 "$real" >/dev/null 2>&1
wait_exit "$steer" 10 || kill_tree "$steer"

# ------------------------------------- root's range, a process without
# CAP_NET_BIND_SERVICE: the supervisor does not bind for it.
# shellcheck disable=SC2086 # $DROP is a command prefix
"$PORTSHIM" run --supervise --ports "$VPORT" --range "$PRIV-$PRIV" \
    --group low -- $DROP "$PSSV" serve "$VPORT" low 1 >"$T/low.log" 2>&1 &
low=$!
wait_exit "$low" 20 || true
# Whatever it did, it must not listen on port 81.
check "a process without CAP_NET_BIND_SERVICE does not get port $PRIV" \
    eval "! listening $PRIV"
like "$T/low.log" "Permission denied" \
    "its bind fails with EACCES, as it would without portshim"
kill "$low" 2>/dev/null || true
wait "$low" 2>/dev/null || true

# ...while root itself, under the same run, does get it.
"$PORTSHIM" run --supervise --ports "$VPORT" --range "$PRIV-$PRIV" \
    --group high -- "$PSSV" serve "$VPORT" high 1 >"$T/high.log" 2>&1 &
high=$!
n=0
until listening "$PRIV" || [ "$n" -ge 200 ]; do
    sleep 0.1
    n=$((n + 1))
done
check "root, which has CAP_NET_BIND_SERVICE, gets port $PRIV" \
    listening "$PRIV"
"$PSTCP" connect 127.0.0.1 "$PRIV" >/dev/null 2>&1 || true
wait_exit "$high" 10 || kill "$high" 2>/dev/null || true
wait "$high" 2>/dev/null || true

done_testing
