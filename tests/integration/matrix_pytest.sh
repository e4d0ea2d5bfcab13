#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_pytest.sh - a sample pytest suite whose tests all start a server
# on one hard-coded port (tests/integration/data/pytest_suite): with
# `pytest -n 4` alone, the xdist workers clash ("Address already in
# use"); under `portshim run -- pytest -n 4` each worker gets a group of
# its own (PORTSHIM_GROUP_FROM, resolved when the worker first binds) and
# every test passes, each talking to its own server.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

why="pytest or pytest-xdist is missing (Debian packages python3-pytest,"
why="$why python3-pytest-xdist; scripts/test installs them)"
"$PY" -c 'import pytest, xdist' 2>/dev/null || skip_all "$why"

# The suite runs in a copy: pytest writes next to it. Plugins other than
# xdist stay out, so that the host's set of plugins cannot change it.
cp -R "$PS_SRCDIR/tests/integration/data/pytest_suite" "$T/suite"
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
export PYTEST_DISABLE_PLUGIN_AUTOLOAD
PYTEST="$PY -m pytest -n 4 -p xdist -p no:cacheprovider -q"

# Both runs at once. Without portshim the suite gets a free port of its
# own, so that nothing else on the host is disturbed.
mkdir "$T/out"
P=$(free_port 40000 40999)
# shellcheck disable=SC2086 # PYTEST is a command line
(cd "$T/suite" && SUITE_PORT=$P $PYTEST >"$T/plain.log" 2>&1)&
plain=$!
# shellcheck disable=SC2086
(cd "$T/suite" && SUITE_OUT=$T/out "$PORTSHIM" run --ports 18080 \
    --range 18900-18999 --map "$T/run.map" -- $PYTEST >"$T/shim.log" 2>&1)&
shim=$!

status=0
wait "$shim" || status=$?
if [ "$status" -eq 0 ] && grep -q '^8 passed' "$T/shim.log"; then
    ok "portshim run -- pytest -n 4: all 8 tests pass"
else
    not_ok "portshim run -- pytest -n 4: all 8 tests pass (status $status)"
    diag_file "$T/shim.log"
fi

workers=$(for f in "$T"/out/*.txt; do sed -n 1p "$f"; done | sort -u |
    tr '\n' ' ')
is "$workers" "gw0 gw1 gw2 gw3 " "the tests ran in 4 xdist workers"
groups=$(for f in "$T"/out/*.txt; do
    sed -n 's/^# portshim map v1 group=.*\(\.gw[0-9]*\)$/\1/p' "$f"
done | sort -u | tr '\n' ' ')
is "$groups" ".gw0 .gw1 .gw2 .gw3 " \
    "each worker had a group of its own (<group>.gwN)"
reals=$(for f in "$T"/out/*.txt; do awk '$1 == "tcp" { print $3 }' "$f"
done | sort -u | grep -c . || true)
is "$reals" 4 "the 4 workers' servers on 18080 had 4 distinct real ports"

status=0
wait "$plain" || status=$?
if [ "$status" -ne 0 ] && grep -q 'Address already in use' "$T/plain.log"
then
    ok "pytest -n 4 without portshim fails with 'Address already in use'"
else
    not_ok "pytest -n 4 without portshim fails with 'Address already in use'"
    diag_file "$T/plain.log"
fi

done_testing
