#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_make.sh - a sample `make -j4` suite whose four shell tests each
# start a web server on the same hard-coded port 18090
# (tests/integration/data/make_suite): alone it fails ("Address already
# in use", or a test reaching another's server); under portshim it
# passes, both with each test wrapped (`make -j4 RUN='portshim run --'`,
# as LOG_COMPILER does for automake suites) and with one run around make
# (`PORTSHIM_GROUP_FROM=TEST_NAME portshim run -- make -j4`, the
# Makefile naming each test in TEST_NAME).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v make >/dev/null 2>&1 ||
    skip_all "make is not installed (Debian package make)"
RANGE=19000-19099
# The suite is its own make run, not a part of the make check that runs
# this test: its variables (TESTS=...) and jobserver stay out.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
SUITE=$PS_SRCDIR/tests/integration/data/make_suite

# The three runs at once, each in a copy of the suite (make writes
# there). Without portshim the suite gets a free port of its own, so
# that nothing else on the host is disturbed.
for v in plain wrapped grouped; do
    mkdir "$T/$v"
    cp "$SUITE/suite.mk" "$T/$v/Makefile"
    cp "$SUITE/server_test.sh" "$T/$v/"
done
P=$(free_port 40000 40999)
(cd "$T/plain" && make -j4 -k PORT="$P" PYTHON="$PY" >"$T/plain.out" 2>&1)&
plain=$!
(cd "$T/wrapped" && make -j4 PYTHON="$PY" \
    RUN="$PORTSHIM run --ports 18090 --range $RANGE --" \
    >"$T/wrapped.out" 2>&1)&
wrapped=$!
(cd "$T/grouped" && PORTSHIM_GROUP_FROM=TEST_NAME "$PORTSHIM" run \
    --ports 18090 --range "$RANGE" --map "$T/grouped.map" -- \
    make -j4 PYTHON="$PY" >"$T/grouped.out" 2>&1)&
grouped=$!

# passed NAME PID DESC: the make run passed and every test left its .ok.
passed() {
    st=0
    wait "$2" || st=$?
    n=$(find "$T/$1" -name 't*.ok' | wc -l | tr -d ' ')
    if [ "$st" -eq 0 ] && [ "$n" -eq 4 ]; then
        ok "$3: the 4 tests pass"
    else
        not_ok "$3: the 4 tests pass (status $st, $n passed)"
        diag_file "$T/$1.out"
    fi
    for t in t1 t2 t3 t4; do
        grep -q "^got '$t'\$" "$T/$1/$t.log" 2>/dev/null ||
            diag "$1: $t did not get its own page"
    done
}
passed wrapped "$wrapped" "make -j4 RUN='portshim run --'"
passed grouped "$grouped" "PORTSHIM_GROUP_FROM=TEST_NAME portshim run -- make -j4"

st=0
wait "$plain" || st=$?
n=$(find "$T/plain" -name 't*.ok' | wc -l | tr -d ' ')
if [ "$st" -ne 0 ] && [ "$n" -lt 4 ] &&
    grep -q 'Address already in use' "$T/plain.out"; then
    ok "make -j4 without portshim fails with 'Address already in use'"
else
    not_ok "make -j4 without portshim fails with 'Address already in use'"
    diag "status $st, $n passed"
    diag_file "$T/plain.out"
fi

done_testing
