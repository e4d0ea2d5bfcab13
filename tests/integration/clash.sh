#!/bin/sh
# SPDX-License-Identifier: MIT
# clash.sh - a bind that fails because another live process of the same
# group holds the group's port says so at the default log level, in one
# line that names the holder (pid and command) and the fix (--per-job,
# PORTSHIM_GROUP_FROM): the program's own "Address already in use" does
# not tell a user that their runner's jobs share one group.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

VPORT=18450
RANGE=19450-19499
unset PORTSHIM_LOG PORTSHIM_LOG_FILE

# The first server of group "clash", until the test ends.
bg "$T/first.log" "$PORTSHIM" run --ports "$VPORT" --range "$RANGE" \
    --group clash --map "$T/clash.map" -- "$PSTCP" listen 127.0.0.1 "$VPORT"
n=100
until grep -q '^listening' "$T/first.log" 2>/dev/null; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || bail_out "the first server did not start"
    sleep 0.1
done
# The process that made the lease and holds the socket.
holder=$(awk -v v="$VPORT" '$1 == "tcp" && $2 == v { print $4 }' \
    "$T/clash.map")
real=$(awk -v v="$VPORT" '$1 == "tcp" && $2 == v { print $3 }' \
    "$T/clash.map")

# A second server of the same group on the same virtual port.
status=0
"$PORTSHIM" run --ports "$VPORT" --range "$RANGE" --group clash \
    --map "$T/clash.map" -- "$PSTCP" listen 127.0.0.1 "$VPORT" \
    >"$T/second.out" 2>"$T/second.err" || status=$?
check "the second server's bind fails" [ "$status" -ne 0 ]
lines=$(grep -c '^portshim\[' "$T/second.err" || true)
is "$lines" 1 "portshim says why in one line at the default log level"
# ERE: the start of the holder's command line (the line cuts it at 63
# characters), its special characters escaped.
cmd=$(printf '%s' "$PSTCP listen 127.0.0.1 $VPORT" | cut -c1-40 |
    sed 's/[][\\.^$*+?(){}|/]/\\&/g')
want="^portshim\\[[0-9]+\\]: bind tcp 127\\.0\\.0\\.1:$VPORT failed: port"
want="$want $VPORT of group=clash \\(real $real\\) is held by pid $holder"
want="$want \\(${cmd}[^)]*\\) of the same group;"
like "$T/second.err" "$want" "the line names the holder's pid and command"
like "$T/second.err" "use 'portshim run --per-job' .* PORTSHIM_GROUP_FROM\$" \
    "the line names the fixes: --per-job and PORTSHIM_GROUP_FROM"

done_testing
