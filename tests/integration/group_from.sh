#!/bin/sh
# SPDX-License-Identifier: MIT
# group_from.sh - one `portshim run` around a runner that numbers its
# workers in the environment: PORTSHIM_GROUP_FROM (which `portshim run`
# sets to PYTEST_XDIST_WORKER,PARALLEL_SEQ by default) gives each worker
# a group of its own, so four jobs can each serve the same virtual port
# at the same time and each reach its own server. Shown with GNU
# parallel (PARALLEL_SEQ) and with a plain shell loop that sets
# PARALLEL_SEQ itself; pytest-xdist is in matrix_pytest.sh.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RANGE=19100-19199
VPORT=18100
JOBS="1 2 3 4"
JOB=$PS_SRCDIR/tests/integration/data/group_job.sh

# check_run NAME DESC: the four results of a run. A result line is
# "ID SEQ listening VPORT ok job-ID REAL".
check_run() {
    cr_dir=$T/$1
    cr_desc=$2
    cr_bad=""
    cr_reals=""
    for id in $JOBS; do
        line=$(cat "$cr_dir/result-$id" 2>/dev/null || echo missing)
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $line
        if [ "$#" -ne 7 ] || [ "$2" != "$id" ] ||
            [ "$3 $4" != "listening $VPORT" ] ||
            [ "$5 $6" != "ok job-$id" ]; then
            cr_bad="$cr_bad [$line]"
        else
            cr_reals="$cr_reals $7"
        fi
    done
    is "$cr_bad" "" "$cr_desc: each job serves $VPORT and reaches its own server"
    # shellcheck disable=SC2086 # one word per port
    cr_n=$(printf '%s\n' $cr_reals | sort -u | grep -c . || true)
    is "$cr_n" 4 "$cr_desc: the 4 jobs' groups had 4 distinct real ports:$cr_reals"
}

# ------------------------------------------------ GNU parallel
if command -v parallel >/dev/null 2>&1 &&
    parallel --version 2>/dev/null | grep -q 'GNU parallel'; then
    mkdir "$T/parallel" "$T/home"
    # shellcheck disable=SC2086 # one argument per job
    HOME=$T/home timeout 60 "$PORTSHIM" run --ports "$VPORT" \
        --range "$RANGE" --map "$T/parallel.map" -- \
        parallel --will-cite -j4 sh "$JOB" {} "$T/parallel" "$PSTCP" \
        "$VPORT" ::: $JOBS >"$T/parallel.out" 2>&1 ||
        diag_file "$T/parallel.out"
    check_run parallel "portshim run -- parallel -j4"
else
    why="GNU parallel is not installed (Debian package parallel;"
    skip "$why scripts/test installs it)" "GNU parallel: own servers"
    skip "$why scripts/test installs it)" "GNU parallel: own real ports"
fi

# ------------------------------------------------ a shell loop
mkdir "$T/loop"
# shellcheck disable=SC2016 # expanded by the inner shell
timeout 60 "$PORTSHIM" run --ports "$VPORT" --range "$RANGE" \
    --map "$T/loop.map" -- sh -c '
        for id in 1 2 3 4; do
            PARALLEL_SEQ=$id sh "$1" "$id" "$2" "$3" "$4" &
        done
        wait' sh "$JOB" "$T/loop" "$PSTCP" "$VPORT" >"$T/loop.out" 2>&1 ||
    diag_file "$T/loop.out"
check_run loop "a shell loop setting PARALLEL_SEQ"

# The runs released the worker groups and removed their mapping files.
left=$(find "$T" -maxdepth 1 -name '*.map' | wc -l | tr -d ' ')
is "$left" 0 "no mapping file is left after the runs"

done_testing
