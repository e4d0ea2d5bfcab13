#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_jest.sh - the README's jest recipe as written, `portshim run --
# npx jest --maxWorkers=4`, on a suite of four test files that each start
# a server on one hard-coded port (data/jest_suite, running the mocha
# suite's fixed_port.js) and talk to it while the others run: with
# portshim's defaults only, each jest worker (JEST_WORKER_ID) gets a group
# of its own and every file passes; with PORTSHIM_GROUP_FROM empty (one
# group for all workers) the servers clash, so the first run proves
# something.
#
# jest is not packaged in Debian: it comes from the npm registry, once,
# into a cache folder (PORTSHIM_TEST_CACHE, default ~/.cache/portshim-tests)
# that later runs reuse; the test is skipped, saying why, where npm or the
# registry is missing.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

for prog in node npm npx; do
    command -v "$prog" >/dev/null 2>&1 ||
        skip_all "$prog is not installed (jest comes from the npm registry)"
done

JEST_VERSION=29
CACHE=${PORTSHIM_TEST_CACHE:-${HOME:-/root}/.cache/portshim-tests}
J=$CACHE/jest$JEST_VERSION
if [ ! -x "$J/node_modules/.bin/jest" ]; then
    mkdir -p "$J"
    # A folder of its own per attempt: two test runs at once never share
    # a half-made one; the finished folder is moved in place.
    new=$(mktemp -d "$CACHE/.jest.XXXXXX")
    # Bounded: a registry that cannot be reached fails in a minute or
    # two, not after npm's own retries.
    if (cd "$new" && timeout 300 npm install --no-audit --no-fund \
        --no-save --fetch-timeout=30000 --fetch-retries=1 \
        "jest@$JEST_VERSION") >"$T/npm.log" 2>&1 &&
        [ -x "$new/node_modules/.bin/jest" ]; then
        rm -rf "$J/node_modules"
        mv "$new/node_modules" "$J/node_modules" 2>/dev/null || true
    fi
    rm -rf "$new"
    if [ ! -x "$J/node_modules/.bin/jest" ]; then
        why=$(grep -m 1 -E 'error (code|errno|network|request)|ERR!' \
            "$T/npm.log" || tail -n 1 "$T/npm.log")
        skip_all "jest $JEST_VERSION cannot be installed from the npm registry: $why"
    fi
fi

cp -R "$PS_SRCDIR/tests/integration/data/jest_suite" "$T/suite"
cp "$PS_SRCDIR/tests/integration/data/mocha_suite/fixed_port.js" "$T/suite/"
ln -s "$J/node_modules" "$T/suite/node_modules"

# suite_run NAME [VAR=VALUE...]: the recipe in the suite's folder.
suite_run() {
    r_name=$1
    shift
    mkdir "$T/$r_name"
    rm -rf "$T/suite/.jest-cache"
    r_status=0
    (cd "$T/suite" && env SUITE_OUT="$T/$r_name" CI=true "$@" \
        timeout 300 "$PORTSHIM" run -- npx jest --maxWorkers=4) \
        >"$T/$r_name.log" 2>&1 || r_status=$?
}

fixed_port_suite "portshim run -- npx jest --maxWorkers=4" 'Tests: *4 passed, 4 total' "1 2 3 4 " JEST_WORKER_ID

done_testing
