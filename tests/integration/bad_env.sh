#!/bin/sh
# SPDX-License-Identifier: MIT
# bad_env.sh - invalid PORTSHIM_* values, seen from a program under the
# preloaded shim: each gives exactly one "portshim[PID]:" line on
# standard error naming the variable, the program runs on, and the
# variable takes its default. (The table of every invalid value and its
# message is the config module's unit test; this checks the path from
# the environment of a real process to its standard error.)
#
# An invalid PORTSHIM_PORTS leaves the shim inert: the bind is not
# rewritten and the registry is not even created. Any other invalid
# variable leaves the shim working with that variable's default: the
# bind gets a real port from the default range 20000-32767.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -n "${PORTSHIM_LIB:-}" ] || bail_out "PORTSHIM_LIB is not set"
PRELOAD=${PORTSHIM_ASAN_RUNTIME:+$PORTSHIM_ASAN_RUNTIME:}$PORTSHIM_LIB
ASANOPTS=${PORTSHIM_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}

P=$(free_port 44000 44999)
LONG=$(printf '%064d' 0)

# try N VAR=VALUE EFFECT: binds tagged port P in group envN with the bad
# setting; EFFECT is "inert" (not rewritten) or "default" (rewritten).
try() {
    n=$1
    setting=$2
    var=${setting%%=*}
    reg=$T/reg$n
    status=0
    env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
        PORTSHIM_REGISTRY="$reg" PORTSHIM_PORTS="$P" \
        PORTSHIM_GROUP="env$n" "$setting" \
        "$PSTCP" bind 127.0.0.1 "$P" >"$T/out" 2>"$T/err" || status=$?
    lines=$(grep -c '^portshim\[' "$T/err" || true)
    named=$(grep '^portshim\[' "$T/err" | grep -c "$var: " || true)
    if [ "$status" = 0 ] && [ "$lines" = 1 ] && [ "$named" = 1 ] &&
        [ "$(cat "$T/out")" = "$P" ]; then
        ok "$setting: one line naming $var, the program runs on"
        diag "$(cat "$T/err")"
    else
        not_ok "$setting: one line naming $var, the program runs on"
        diag "exit status $status, $lines log lines, output $(cat "$T/out")"
        diag_file "$T/err"
    fi
    if [ "$3" = inert ]; then
        if [ ! -e "$reg" ]; then
            ok "$var invalid: the shim is inert (no registry made)"
        else
            not_ok "$var invalid: the shim is inert (no registry made)"
        fi
    else
        real=$("$PSSTRESS" regcheck "$reg" 2>/dev/null |
            awk -v g="env$n" -v v="$P" '$1 == g && $3 == v { print $4 }')
        if [ -n "$real" ] && [ "$real" -ge 20000 ] && [ "$real" -le 32767 ]
        then
            ok "$var invalid: the bind was still rewritten ($P -> $real)"
        else
            not_ok "$var invalid: the bind was still rewritten"
            diag "real port: '$real'"
        fi
    fi
}

try 1 "PORTSHIM_PORTS=70000" inert
try 2 "PORTSHIM_PORTS=8080,,x" inert
try 3 "PORTSHIM_RANGE=30000-20000" default
try 4 "PORTSHIM_RANGE=lots" default
try 5 "PORTSHIM_UNMAPPED=maybe" default
try 6 "PORTSHIM_ON_ERROR=sometimes" default
try 7 "PORTSHIM_LOG=loud" default
try 8 "PORTSHIM_BYPASS=perhaps" default
try 9 "PORTSHIM_KEEP_ENV=2" default
try 10 "PORTSHIM_GROUP_FROM=not-a-name!" default
try 11 "PORTSHIM_GROUP_OWNER=nobody" default

# A bad group name: the shim makes a fresh group instead.
status=0
env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
    PORTSHIM_REGISTRY="$T/reg12" PORTSHIM_PORTS="$P" \
    PORTSHIM_GROUP="$LONG" \
    "$PSTCP" bind 127.0.0.1 "$P" >"$T/out" 2>"$T/err" || status=$?
is "$status:$(grep -c '^portshim\[.*PORTSHIM_GROUP: ' "$T/err" || true)" \
    "0:1" "a 64-character PORTSHIM_GROUP: one line, the program runs on"
groups=$("$PSSTRESS" regcheck "$T/reg12" | awk '$2 == "group" { print $1 }')
case $groups in
ps-*) ok "the bind went to a fresh group ($groups)" ;;
*) not_ok "the bind went to a fresh group (got '$groups')" ;;
esac

done_testing
