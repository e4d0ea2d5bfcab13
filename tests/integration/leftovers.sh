#!/bin/sh
# SPDX-License-Identifier: MIT
# leftovers.sh - what killed runs and hostile bytes leave behind:
#   - `gc` removes the temporary mapping files of writers that died
#     before renaming them, and the mapping files of groups killed with
#     kill -9 (no lease left, no live process), one line each, and keeps
#     those of live writers and groups;
#   - `gc` removes this user's port claims whose holder is dead;
#   - `ls`, `ls --json` and `gc` print a registry's group field safely:
#     bytes outside the group alphabet as \xHH, never more than the
#     field's 64 bytes (a group field of 64 bytes without its NUL).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# dead_pid: prints the pid of a process that has ended.
dead_pid() {
    sh -c 'echo $$' >"$T/dead.pid"
    cat "$T/dead.pid"
}

# ------------------------------------------------ temporary mapping files
D=$(dead_pid)
: >"$T/.g1.map.tmp.$D.0"
: >"$T/.g2.map.tmp.$$.3"
# ---------------------------------------- the mapping file of a dead group
bg "$T/dead.log" "$PORTSHIM" run --ports 8080 --group dead-g \
    --map "$T/dead-g.map" -- "$PSTCP" listen 127.0.0.1 8080
dead_run=$ps_last_pid
bg "$T/live.log" "$PORTSHIM" run --ports 8080 --group live-g \
    --map "$T/live-g.map" -- "$PSTCP" listen 127.0.0.1 8080
live_run=$ps_last_pid
wait_for_map "$T/dead-g.map" 8080 20 || true
wait_for_map "$T/live-g.map" 8080 20 || true
# The whole of the dead group goes at once: run and server.
server=$(awk '$1 == "tcp" { print $4 }' "$T/dead-g.map")
kill -KILL -- "-$dead_run" 2>/dev/null || true
kill -KILL "$server" 2>/dev/null || true
wait_exit "$dead_run" 10 || true
wait_exit "$server" 10 || true
check "the killed group's mapping file is still there" [ -e "$T/dead-g.map" ]

# ------------------------------------------------ a claim of a dead holder
CLAIM=/dev/shm/portshim-claim-$(free_port 48000 48999)
ln -s "portshim claim v1 $(id -u) 1 $D 1" "$CLAIM"

got=$(capture "$PORTSHIM" gc)
check "gc removes a dead writer's temporary mapping file" \
    [ ! -e "$T/.g1.map.tmp.$D.0" ]
case $got in
*"removed temporary mapping file $T/.g1.map.tmp.$D.0 (writer pid $D is gone)"*)
    ok "... saying so" ;;
*) not_ok "... saying so"; diag "$got" ;;
esac
check "and keeps a live writer's" [ -e "$T/.g2.map.tmp.$$.3" ]
check "gc removes the mapping file of the group killed with kill -9" \
    [ ! -e "$T/dead-g.map" ]
case $got in
*"group=dead-g"*"removed mapping file $T/dead-g.map (group dead-g has no lease and no live process)"*"freed 1 lease")
    ok "... saying so, after freeing its lease" ;;
*) not_ok "... saying so, after freeing its lease"; diag "$got" ;;
esac
check "and keeps the live group's" [ -e "$T/live-g.map" ]
check "gc removes this user's claim whose holder is dead" [ ! -L "$CLAIM" ]
rm -f "$CLAIM"
got=$(capture "$PORTSHIM" gc)
is "$got" "freed 0 leases" "a second gc finds nothing more"
kill_tree "$live_run"

# --------------------------------------------- hostile bytes in a group
sleep 300 &
holder=$!
"$PORTSHIM" pick --group evilgroup --hold "$holder" >/dev/null
# 64 bytes without a NUL: an escape sequence, a bell, then "A"s.
"$PY" - "$PORTSHIM_REGISTRY" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.find(b'evilgroup\0')
assert i > 0
b[i:i + 64] = (b'\x1b[31mRED\x07' + b'A' * 64)[:64]
open(p, 'r+b').write(b)
EOF
WANT='\x1b\x5b31mRED\x07AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
"$PORTSHIM" ls >"$T/ls.out" 2>&1 || true
check "ls prints no raw control byte" eval "! LC_ALL=C grep -q '[[:cntrl:]]' '$T/ls.out'"
check "ls shows the group's 64 bytes escaped, and nothing past them" \
    grep -qF "$WANT  pick" "$T/ls.out"
"$PORTSHIM" ls --json >"$T/ls.json" 2>&1 || true
check "ls --json stays valid JSON with the group escaped" \
    "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["leases"][0]["group"] == sys.argv[2], d' "$T/ls.json" "$WANT"
kill "$holder"
wait "$holder" 2>/dev/null || true
"$PORTSHIM" gc >"$T/gc.out" 2>&1 || true
check "gc prints no raw control byte" eval "! LC_ALL=C grep -q '[[:cntrl:]]' '$T/gc.out'"
check "gc names the group escaped" grep -qF "group=$WANT (" "$T/gc.out"

done_testing
