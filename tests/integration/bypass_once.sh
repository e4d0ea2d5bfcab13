#!/bin/sh
# SPDX-License-Identifier: MIT
# bypass_once.sh - the warning about a program started with an
# environment that drops the shim is written once per program and
# `portshim run` (PORTSHIM_WARNED), whichever process starts it, and not
# at all for a program that can tell it never binds, connects or starts
# another (false, true): `portshim run -- parallel` of 6 jobs, whose
# probes run /usr/bin/false and friends scrubbed, prints no such line.
# Without `portshim run` (no PORTSHIM_WARNED) each exec is still reported.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

P=$(free_port 45000 45999)
unset PORTSHIM_LOG PORTSHIM_LOG_FILE

warnings() {
    grep -c "^portshim\\[[0-9]*\\]: warning: .* is started with an environment that drops" "$1" || true
}

# Three scrubbed execs of a program that binds, from three processes at
# once (xargs -P3) and then in a row: one line for each run.
# shellcheck disable=SC2016 # expanded by the inner shell
"$PORTSHIM" run --ports "$P" -- sh -c '
    printf "%s\n" 1 2 3 | xargs -P3 -I{} env -u LD_PRELOAD "$1" bind 127.0.0.1 0
' sh "$PSTCP" >"$T/x.out" 2>"$T/x.err"
is "$(warnings "$T/x.err")" 1 \
    "3 scrubbed execs of pstcp by 3 processes of one run: one warning"
like "$T/x.err" "warning: $PSTCP is started with an environment that drops LD_PRELOAD" \
    "the warning names the program"
# shellcheck disable=SC2016 # expanded by the inner shell
"$PORTSHIM" run --ports "$P" -- sh -c '
    for i in 1 2 3; do env -u LD_PRELOAD "$1" bind 127.0.0.1 0; done
    env -u LD_PRELOAD "$2" -c "pass"
' sh "$PSTCP" "$PY" >"$T/y.out" 2>"$T/y.err"
is "$(warnings "$T/y.err")" 2 \
    "3 scrubbed execs of pstcp and one of python3 in a row: one warning each"

# Programs that cannot bind: no warning at all.
"$PORTSHIM" run --ports "$P" -- sh -c '
    env -u LD_PRELOAD false; env -u LD_PRELOAD true; env -u LD_PRELOAD true
' >"$T/f.out" 2>"$T/f.err"
is "$(cat "$T/f.err")" "" "scrubbed false and true: nothing to warn about"

# Without portshim run, no run-wide memory: each exec is reported.
# shellcheck disable=SC2016 # expanded by the inner shell
PORTSHIM_PORTS=$P with_shim sh -c '
    for i in 1 2; do env -u LD_PRELOAD "$1" bind 127.0.0.1 0; done
' sh "$PSTCP" >"$T/n.out" 2>"$T/n.err"
is "$(warnings "$T/n.err")" 2 "without portshim run: one warning per exec"

# GNU parallel of 6 jobs: its probes are not reported.
if command -v parallel >/dev/null 2>&1 &&
    parallel --version 2>/dev/null | grep -q 'GNU parallel'; then
    mkdir "$T/home"
    HOME=$T/home "$PORTSHIM" run -- parallel --will-cite -j6 echo job ::: \
        1 2 3 4 5 6 >"$T/p.out" 2>"$T/p.err"
    is "$(grep -c '^job [1-6]$' "$T/p.out")" 6 "parallel ran the 6 jobs"
    is "$(grep -c '^portshim\[' "$T/p.err" || true)" 0 \
        "portshim run -- parallel -j6: no portshim line"
else
    skip "GNU parallel is not installed (scripts/test installs it)" \
        "parallel: the 6 jobs"
    skip "GNU parallel is not installed" "parallel: no portshim line"
fi

done_testing
