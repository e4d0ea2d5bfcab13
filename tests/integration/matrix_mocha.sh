#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_mocha.sh - a mocha suite whose four spec files each start a server
# on one hard-coded port (tests/integration/data/mocha_suite) and talk to
# it while the others run: under `portshim run -- mocha --parallel`, with
# portshim's defaults only, each mocha worker (MOCHA_WORKER_ID) gets a
# group of its own and every spec passes; with PORTSHIM_GROUP_FROM empty
# (one group for all workers) the servers clash, so the first run proves
# something.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

for prog in node mocha; do
    command -v "$prog" >/dev/null 2>&1 ||
        skip_all "$prog is not installed (Debian packages nodejs, mocha; scripts/test installs them)"
done
# Debian's mocha lives in /usr/share/nodejs, which a node from elsewhere
# (NodeSource's) does not search by itself.
NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
export NODE_PATH
mocha --version >/dev/null 2>&1 ||
    skip_all "mocha does not start here (mocha --version fails)"

cp -R "$PS_SRCDIR/tests/integration/data/mocha_suite" "$T/suite"
SPECS="spec1.js spec2.js spec3.js spec4.js"

# suite_run NAME [VAR=VALUE...]: the suite under `portshim run`, in 4 workers.
suite_run() {
    r_name=$1
    shift
    mkdir "$T/$r_name"
    r_status=0
    # shellcheck disable=SC2086 # one argument per spec file
    (cd "$T/suite" && env SUITE_OUT="$T/$r_name" "$@" timeout 120 \
        "$PORTSHIM" run -- mocha --parallel --jobs 4 $SPECS) \
        >"$T/$r_name.log" 2>&1 || r_status=$?
}

fixed_port_suite "portshim run -- mocha --parallel" '4 passing' "0 1 2 3 " MOCHA_WORKER_ID

done_testing
