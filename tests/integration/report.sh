#!/bin/sh
# SPDX-License-Identifier: MIT
# report.sh - `portshim run --report` on a small suite: when CMD ends it
# lists exactly the tagged ports that the group and its worker groups
# bound and connected to (a TCP server and its client, a UDP socket, a
# connect to a server outside the group, a bind in a worker's group), and
# the --ports that tags the bound ones; the report file is gone after.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# A server outside any group, on a free port: the suite connects to it.
OUT=$(free_port 40000 40999)
bg "$T/outside.log" "$PSTCP" listen 127.0.0.1 "$OUT"
n=100
until grep -q '^listening' "$T/outside.log" 2>/dev/null; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || bail_out "the outside server did not start"
    sleep 0.1
done

cat >"$T/suite.py" <<'PYEOF'
import socket, sys
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", 18501))
t.listen()
socket.create_connection(("127.0.0.1", 18501)).close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 18502))
socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()
PYEOF

status=0
# shellcheck disable=SC2016 # expanded by the inner shell
"$PORTSHIM" run --report --range 19500-19549 -- sh -c '
    echo "$PORTSHIM_REPORT" >"$4" &&
    "$1" "$2" "$3" &&
    PARALLEL_SEQ=2 "$1" -c "import socket; socket.socket().bind((\"127.0.0.1\", 18504))"
'  sh "$PY" "$T/suite.py" "$OUT" "$T/report-path" >"$T/out" 2>"$T/err" ||
    status=$?
is "$status" 0 "the suite passes under portshim run --report"
grep '^portshim: ' "$T/err" | sed 's/group ps-[0-9]*-[0-9a-f]* /group G /' \
    >"$T/report"
cat >"$T/want" <<EOF2
portshim: report of group G (with its workers and jobs): 4 tagged ports bound or connected to
portshim:   tcp 18501 bound, connected to
portshim:   udp 18502 bound
portshim:   tcp 18504 bound
portshim:   tcp $OUT connected to, not bound in the group
portshim: the bound ones, to tag only them: --ports tcp:18501,udp:18502,tcp:18504
EOF2
if cmp -s "$T/want" "$T/report"; then
    ok "the report lists exactly the ports the suite bound and connected to"
else
    not_ok "the report lists exactly the ports the suite bound and connected to"
    diag_file "$T/err"
fi
rpath=$(cat "$T/report-path")
check "CMD saw PORTSHIM_REPORT (an absolute path)" \
    [ "${rpath#/}" != "$rpath" ]
check "the report file is removed when CMD ends" [ ! -e "$rpath" ]

# Without --report, nothing is noted or printed.
"$PORTSHIM" run --range 19500-19549 -- "$PY" "$T/suite.py" "$OUT" \
    >"$T/out2" 2>"$T/err2"
is "$(cat "$T/err2")" "" "without --report, run prints nothing"

done_testing
