#!/bin/sh
# SPDX-License-Identifier: MIT
# env.sh - `portshim env` hands a group's mapping to programs that take
# their ports as arguments: `export PORTSHIM_TCP_<virtual>=<real>` lines
# that a shell evals and a Python program reads from its environment.

# The inner shells expand their own variables:
# shellcheck disable=SC2016
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

P1=$(free_port 44000 44499)
P2=$(free_port 44500 44999)
G=env-$$

bg "$T/srv1.log" "$PORTSHIM" run --ports "$P1,$P2" --group "$G" -- sh -c '
    "$1" listen 127.0.0.1 "$2" one &
    exec "$1" listen 127.0.0.1 "$3" two' sh "$PSTCP" "$P1" "$P2"
r1=$(capture "$PORTSHIM" wait --group "$G" --timeout 20 "$P1")
r2=$(capture "$PORTSHIM" wait --group "$G" --timeout 20 "$P2")
if [ -z "$r1" ] || [ -z "$r2" ]; then
    bail_out "the group's servers did not start"
fi

"$PORTSHIM" env --group "$G" >"$T/env" 2>"$T/err" || true
is "$(cat "$T/env")" "export PORTSHIM_TCP_$P1=$r1
export PORTSHIM_TCP_$P2=$r2" \
    "env prints one export line per virtual port, in order"
is "$(wc -c <"$T/err" | tr -d ' ')" 0 "and nothing on stderr"

# The shell example of the documentation.
got=$(sh -c 'eval "$("$1" env --group "$2")"; eval "echo \$PORTSHIM_TCP_$3"' \
    sh "$PORTSHIM" "$G" "$P1")
is "$got" "$r1" "a shell evals it and reads PORTSHIM_TCP_$P1"
is "$("$PSTCP" connect 127.0.0.1 "$got")" "ok one" \
    "and reaches the group's server there, from outside the group"

# The Python example: the variables of the group's environment.
got=$(sh -c 'eval "$("$1" env --group "$2")"; exec "$3" -c "
import os, sys
print(int(os.environ[\"PORTSHIM_TCP_\" + sys.argv[1]]))" "$4"' \
    sh "$PORTSHIM" "$G" "$PY" "$P2")
is "$got" "$r2" "a Python program reads PORTSHIM_TCP_$P2 from its environment"

# Inside the group, the default group is the group's own.
got=$("$PORTSHIM" run --ports "$P1" --group "$G" -- "$PORTSHIM" env)
check "inside the group, env without --group prints the same lines" \
    test "$got" = "$(cat "$T/env")"

# A group with no lease: nothing, status 0. A bad group: status 2.
is "$("$PORTSHIM" env --group "nothing-$$"; echo "status $?")" "status 0" \
    "a group without leases prints nothing"
st=0
"$PORTSHIM" env --group 'bad group' >/dev/null 2>&1 || st=$?
is "$st" 2 "an invalid group is a usage error"
st=0
env -u PORTSHIM_GROUP "$PORTSHIM" env >/dev/null 2>"$T/err" || st=$?
is "$st" 2 "without --group or PORTSHIM_GROUP, a usage error"

done_testing
