#!/bin/sh
# SPDX-License-Identifier: MIT
# per_job.sh - `portshim run --per-job -- RUNNER`: four jobs, each a test
# that serves a fixed port (VPORT) and talks to its own server while the
# others run (data/fixed_job.sh), pass when each job gets a group of its
# own, and fail without --per-job (one group: the servers clash). With
# GNU make -j4 (posix_spawn), a recursive make, an automake project's
# `make check -j4` (jobs started by sub-makes), ctest -j4, xargs -P4,
# ninja and GNU parallel. And a finished job's group is released as soon
# as it ends, while the run goes on.

# The single quotes below hold text for inner shells, make and ninja.
# shellcheck disable=SC2016
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

VPORT=18600
RANGE=19600-19699
JOB=$PS_SRCDIR/tests/integration/data/fixed_job.sh
unset PORTSHIM_LOG PORTSHIM_LOG_FILE MAKEFLAGS MAKELEVEL MFLAGS

# jobs_pass DESC STATUS DIR LOG: a check that a run of the four jobs
# passed: STATUS 0, and each job reached its own server (DIR/got-N).
jobs_pass() {
    jp_got=$(cat "$3"/got-* 2>/dev/null | sort | tr '\n' ' ')
    if [ "$2" -eq 0 ] &&
        [ "$jp_got" = "ok job-1 ok job-2 ok job-3 ok job-4 " ]; then
        ok "$1"
    else
        not_ok "$1 (status $2, got: $jp_got)"
        diag_file "$4"
    fi
}

# portshim_on_path DIR: DIR/portshim runs the build's portshim, for
# recipes that name it on PATH.
portshim_on_path() {
    mkdir -p "$1"
    printf '#!/bin/sh\nexec "%s" "$@"\n' "$PORTSHIM" >"$1/portshim"
    chmod +x "$1/portshim"
}

# try NAME EXPECT [run option] -- CMD...: runs CMD in $T/NAME (the jobs'
# folder is $T/NAME/d, exported as D) under portshim run, and checks that
# it passes (EXPECT pass) or fails (EXPECT fail).
try() {
    tr_name=$1
    tr_expect=$2
    shift 2
    tr_opt=""
    if [ "$1" = --per-job ]; then
        tr_opt=--per-job
        shift
    fi
    [ "$1" = -- ] && shift
    mkdir -p "$T/$tr_name/d"
    rm -f "$T/$tr_name"/d/*
    tr_status=0
    (cd "$T/$tr_name" && D=$T/$tr_name/d timeout 120 "$PORTSHIM" run \
        $tr_opt --ports "$VPORT" --range "$RANGE" -- "$@") \
        >"$T/$tr_name.log" 2>&1 || tr_status=$?
    tr_desc="portshim run${tr_opt:+ $tr_opt} -- $*"
    if [ "$tr_expect" = pass ]; then
        jobs_pass "$tr_desc: the 4 jobs pass, each reaching its own server" \
            "$tr_status" "$T/$tr_name/d" "$T/$tr_name.log"
        tr_groups=$(cat "$T/$tr_name"/d/group-* 2>/dev/null | sort -u |
            grep -cE '\.j[0-9a-f]{8}$' || true)
        is "$tr_groups" 4 "$tr_desc: 4 job groups (<run group>.jXXXXXXXX)"
    else
        tr_failed=$(grep -l failed "$T/$tr_name"/d/tried-* 2>/dev/null |
            wc -l)
        if [ "$tr_status" -ne 0 ] && [ "$tr_failed" -ge 1 ]; then
            ok "$tr_desc: fails, the jobs' servers clash in one group"
        else
            not_ok "$tr_desc: fails, the jobs' servers clash in one group (status $tr_status)"
            diag_file "$T/$tr_name.log"
        fi
    fi
}

export JOB PSTCP VPORT

# ------------------------------------------------ GNU make -j4
mkdir -p "$T/make"
cat >"$T/make/Makefile" <<'EOF2'
all: t1 t2 t3 t4
t1 t2 t3 t4:
	$(JOB) $(@:t%=%) $(D) $(PSTCP) $(VPORT) 4
EOF2
try make pass --per-job -- make -j4
try make fail -- make -j4

# ------------------------------------------------ a recursive make
mkdir -p "$T/rmake/sub"
cp "$T/make/Makefile" "$T/rmake/sub/Makefile"
printf 'all:\n\t$(MAKE) -C sub -j4\n' >"$T/rmake/Makefile"
try rmake pass --per-job -- make
try rmake fail -- make

# ------------------------------------------------ xargs -P4
try xargs pass --per-job -- sh -c \
    'printf "%s\n" 1 2 3 4 | xargs -P4 -I{} "$JOB" {} "$D" "$PSTCP" "$VPORT" 4'
try xargs fail -- sh -c \
    'printf "%s\n" 1 2 3 4 | xargs -P4 -I{} "$JOB" {} "$D" "$PSTCP" "$VPORT" 4'

# ------------------------------------------------ ctest -j4
if command -v cmake >/dev/null 2>&1 && command -v ctest >/dev/null 2>&1
then
    mkdir -p "$T/ctest/src"
    {
        echo 'cmake_minimum_required(VERSION 3.13)'
        echo 'project(fixed NONE)'
        echo 'enable_testing()'
        for i in 1 2 3 4; do
            echo "add_test(NAME t$i COMMAND sh $JOB $i $T/ctest/d $PSTCP $VPORT 4)"
        done
    } >"$T/ctest/src/CMakeLists.txt"
    (cd "$T/ctest" && cmake -S src -B build >"$T/cmake.log" 2>&1) ||
        diag_file "$T/cmake.log"
    try ctest pass --per-job -- ctest -j4 --test-dir build
    try ctest fail -- ctest -j4 --test-dir build
else
    skip "cmake is not installed (scripts/test installs it)" "ctest -j4"
    skip "cmake is not installed" "ctest -j4: groups"
    skip "cmake is not installed" "ctest -j4 without --per-job"
fi

# ------------------------------------------------ ninja
if command -v ninja >/dev/null 2>&1; then
    mkdir -p "$T/ninja"
    {
        echo 'rule job'
        echo '  command = sh $$JOB $id $$D $$PSTCP $$VPORT 4'
        for i in 1 2 3 4; do
            printf 'build out%s: job\n  id = %s\n' "$i" "$i"
        done
    } >"$T/ninja/build.ninja"
    try ninja pass --per-job -- ninja -j4
    try ninja fail -- ninja -j4
else
    skip "ninja is not installed (scripts/test installs ninja-build)" ninja
    skip "ninja is not installed" "ninja: groups"
    skip "ninja is not installed" "ninja without --per-job"
fi

# ------------------------------------------------ GNU parallel
# PORTSHIM_GROUP_FROM empty: the jobs get groups from --per-job alone
# (PARALLEL_SEQ would give them one too).
if command -v parallel >/dev/null 2>&1 &&
    parallel --version 2>/dev/null | grep -q 'GNU parallel'; then
    mkdir -p "$T/home"
    try parallel pass --per-job -- env HOME="$T/home" \
        PORTSHIM_GROUP_FROM= parallel --will-cite -j4 \
        "$JOB" {} '$D' "$PSTCP" "$VPORT" 4 ::: 1 2 3 4
    try parallel fail -- env HOME="$T/home" PORTSHIM_GROUP_FROM= \
        parallel --will-cite -j4 "$JOB" {} '$D' "$PSTCP" "$VPORT" 4 \
        ::: 1 2 3 4
else
    skip "GNU parallel is not installed (scripts/test installs it)" parallel
    skip "GNU parallel is not installed" "parallel: groups"
    skip "GNU parallel is not installed" "parallel without --per-job"
fi

# ------------------------------------------------ automake make check -j4
if command -v automake >/dev/null 2>&1 &&
    command -v autoreconf >/dev/null 2>&1; then
    A=$T/automake
    mkdir -p "$A"
    cat >"$A/configure.ac" <<'EOF2'
AC_INIT([fixed], [1])
AM_INIT_AUTOMAKE([foreign])
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
EOF2
    cat >"$A/Makefile.am" <<'EOF2'
TESTS = t1.test t2.test t3.test t4.test
TEST_EXTENSIONS = .test
TEST_LOG_COMPILER = sh $(srcdir)/run-job.sh
EXTRA_DIST = $(TESTS) run-job.sh
EOF2
    # Each test names its job; the LOG_COMPILER runs fixed_job.sh.
    for i in 1 2 3 4; do echo "$i" >"$A/t$i.test"; done
    cat >"$A/run-job.sh" <<'EOF2'
exec sh "$JOB" "$(cat "$1")" "$D" "$PSTCP" "$VPORT" 4
EOF2
    (cd "$A" && autoreconf -fi && ./configure) >"$T/automake-setup.log" 2>&1 ||
        diag_file "$T/automake-setup.log"
    try automake pass --per-job -- make check -j4
    try automake fail -- make check -j4

    # The README's other automake recipe: no run around make, each test
    # wrapped by LOG_COMPILER (a group per test), `portshim` on PATH.
    B=$T/automake-wrap
    mkdir -p "$B/d"
    portshim_on_path "$B/bin"
    cp "$A/configure.ac" "$B/"
    cat >"$B/Makefile.am" <<'EOF2'
TESTS = t1 t2 t3 t4
LOG_COMPILER = portshim run --
EXTRA_DIST = $(TESTS)
EOF2
    for i in 1 2 3 4; do
        printf '#!/bin/sh\nexec sh "$JOB" %s "$D" "$PSTCP" "$VPORT" 4\n' \
            "$i" >"$B/t$i"
        chmod +x "$B/t$i"
    done
    aw_status=0
    (cd "$B" && autoreconf -fi && ./configure) >"$T/automake-wrap.log" \
        2>&1 || aw_status=$?
    if [ "$aw_status" -eq 0 ]; then
        (cd "$B" && PATH=$B/bin:$PATH D=$B/d \
            PORTSHIM_RANGE=$RANGE timeout 120 make check -j4) \
            >>"$T/automake-wrap.log" 2>&1 || aw_status=$?
    fi
    jobs_pass "automake with LOG_COMPILER = portshim run --: make check -j4 passes" \
        "$aw_status" "$B/d" "$T/automake-wrap.log"
else
    skip "automake is not installed" "automake make check -j4"
    skip "automake is not installed" "automake: groups"
    skip "automake is not installed" "automake without --per-job"
    skip "automake is not installed" "automake with LOG_COMPILER"
fi

# ------------------------------------------------ two CI shards at once
# The README's GitHub Actions step, its `run:` text taken from the README
# as written and run by bash: two shards of two jobs each, all four
# serving VPORT at once, with run's defaults (every port tagged).
if command -v bash >/dev/null 2>&1; then
    S=$T/shards
    mkdir -p "$S/d"
    portshim_on_path "$S/bin"
    awk '/^```yaml/ { y = 1; next }
         y && /^```/ { y = 0 }
         y && r { sub(/^    /, ""); print }
         y && /^  run: \|/ { r = 1 }' "$PS_SRCDIR/README.md" >"$S/step.sh"
    cat >"$S/Makefile" <<'EOF2'
check-shard1: t1 t2
check-shard2: t3 t4
t1 t2 t3 t4:
	$(JOB) $(@:t%=%) $(D) $(PSTCP) $(VPORT) 4
EOF2
    check "the README has the two-shard step" grep -q 'check-shard2' \
        "$S/step.sh"
    sh_status=0
    (cd "$S" && PATH=$S/bin:$PATH D=$S/d PORTSHIM_RANGE=$RANGE \
        timeout 120 bash step.sh) >"$T/shards.log" 2>&1 || sh_status=$?
    jobs_pass "README's two-shard CI step: both shards pass, 4 jobs at once" \
        "$sh_status" "$S/d" "$T/shards.log"
    # The same step without --per-job: each shard's two jobs clash.
    rm -f "$S"/d/*
    sed 's/ --per-job//' "$S/step.sh" >"$S/step1.sh"
    sh_status=0
    (cd "$S" && PATH=$S/bin:$PATH D=$S/d PORTSHIM_RANGE=$RANGE \
        timeout 120 bash step1.sh) >"$T/shards1.log" 2>&1 || sh_status=$?
    check "the same step without --per-job fails (jobs of a shard clash)" \
        [ "$sh_status" -ne 0 ]
else
    skip "bash is not installed" "README's two-shard CI step"
    skip "bash is not installed" "the README has the two-shard step"
    skip "bash is not installed" "two-shard step without --per-job"
fi

# ------------------------------------------------ released as they end
# make -j1: job 1 serves and talks to its server, and ends; then job 2
# lists the registry and the mapping files, while the run goes on.
mkdir -p "$T/release/d"
cat >"$T/release/Makefile" <<'EOF2'
all: second
first:
	$(JOB) 1 $(D) $(PSTCP) $(VPORT) 1
second: first
	$(PORTSHIM) ls > $(D)/ls.txt
	ls $(MAPDIR) > $(D)/maps.txt
EOF2
(cd "$T/release" && "$PORTSHIM" run --per-job --ports "$VPORT" \
    --range "$RANGE" -- make -j1 D="$T/release/d" PORTSHIM="$PORTSHIM" \
    MAPDIR="$(dirname "$PORTSHIM_REGISTRY")") >"$T/release.log" 2>&1 ||
    diag_file "$T/release.log"
is "$(cat "$T/release/d/got-1")" "ok job-1" "make -j1: the first job passes"
first=$(cat "$T/release/d/group-1")
check "the first job had a job group" [ -n "$first" ]
if grep -q -- "$first" "$T/release/d/ls.txt"; then
    not_ok "the first job's lease is gone once it ended, while the run goes on"
    diag_file "$T/release/d/ls.txt"
else
    ok "the first job's lease is gone once it ended, while the run goes on"
fi
if grep -q '\.j[0-9a-f]*\.map$' "$T/release/d/maps.txt"; then
    not_ok "the first job's mapping file is gone once it ended"
    diag_file "$T/release/d/maps.txt"
else
    ok "the first job's mapping file is gone once it ended"
fi

left=$(find "$(dirname "$PORTSHIM_REGISTRY")" -maxdepth 1 -name '*.map' |
    wc -l | tr -d ' ')
is "$left" 0 "no mapping file is left after the runs"

done_testing
