#!/bin/sh
# SPDX-License-Identifier: MIT
# reclaim.sh - `portshim gc` takes back the leases of a group whose owner
# was killed with SIGKILL, and never those of a living one.
#
# Two servers under the preloaded shim, each its own group and its own
# lease holder. While both live, gc frees nothing. After one is killed
# with SIGKILL, `gc --dry-run` names its lease and frees nothing, `gc`
# frees exactly that lease, and the living group keeps its own. The
# registry passes every check at each step.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -n "${PORTSHIM_LIB:-}" ] || bail_out "PORTSHIM_LIB is not set"
PRELOAD=${PORTSHIM_ASAN_RUNTIME:+$PORTSHIM_ASAN_RUNTIME:}$PORTSHIM_LIB
ASANOPTS=${PORTSHIM_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}

V=$(free_port 46000 46999)

# leases: prints "GROUP VPORT REAL" for each group lease.
leases() {
    "$PSSTRESS" regcheck "$PORTSHIM_REGISTRY" |
        awk '$2 == "group" { print $1, $3, $4 }' | sort
}

for g in doomed alive; do
    bg "$T/$g.log" env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
        PORTSHIM_PORTS="$V" PORTSHIM_GROUP="$g" \
        PORTSHIM_RANGE=18000-18999 \
        "$PSTCP" listen 127.0.0.1 "$V" "$g"
    eval "pid_$g=\$ps_last_pid"
done
n=100
while [ "$n" -gt 0 ] && [ "$(leases | wc -l)" -lt 2 ]; do
    sleep 0.1
    n=$((n - 1))
done
before=$(leases)
is "$(echo "$before" | awk '{ print $1, $2 }' | tr '\n' ' ')" \
    "alive $V doomed $V " "both groups lease virtual port $V"

got=$(capture "$PORTSHIM" gc)
is "$got" "freed 0 leases" "gc while both owners live frees nothing"
is "$(leases)" "$before" "both leases are still there"

# shellcheck disable=SC2154 # set by the eval above
kill -KILL "$pid_doomed"
wait "$pid_doomed" 2>/dev/null || true
doomed_real=$(echo "$before" | awk '$1 == "doomed" { print $3 }')

got=$(capture "$PORTSHIM" gc --dry-run)
case $got in
*"$V -> $doomed_real group=doomed"*"would free 1 lease"*)
    ok "gc --dry-run names the dead group's lease" ;;
*)
    not_ok "gc --dry-run names the dead group's lease"
    diag "$got"
    ;;
esac
is "$(leases)" "$before" "and frees nothing"

got=$(capture "$PORTSHIM" gc)
case $got in
*"group=doomed"*"freed 1 lease"*) ok "gc frees the dead group's lease" ;;
*)
    not_ok "gc frees the dead group's lease"
    diag "$got"
    ;;
esac
is "$(leases)" "$(echo "$before" | grep '^alive ')" \
    "the living group keeps its lease"
is "$("$PSSTRESS" regcheck "$PORTSHIM_REGISTRY" | tail -n 1)" "check ok" \
    "the registry passes every check"
# shellcheck disable=SC2154
if alive "$pid_alive" && listening "$(echo "$before" |
    awk '$1 == "alive" { print $3 }')"; then
    ok "the living server still listens on its real port"
else
    not_ok "the living server still listens on its real port"
fi

done_testing
