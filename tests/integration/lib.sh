# shellcheck shell=sh
# SPDX-License-Identifier: MIT
# lib.sh - a small TAP library for portshim's integration tests (POSIX sh).
#
# A test sources it first:
#
#     # shellcheck source-path=SCRIPTDIR source=lib.sh
#     . "$(dirname "$0")/lib.sh"
#
# and then reports with ok/not_ok/check/is/skip, and ends with
# done_testing (which prints the plan: a test that dies half way has none,
# and the TAP driver reports it as an error).
#
# Environment, set by `make check` (AM_TESTS_ENVIRONMENT in Makefile.am):
#   PORTSHIM_BIN   the portshim program of the build tree
#   PORTSHIM_LIB   the preload library of the build tree
#   PS_HELPERS     the folder holding the helper programs (pstcp)
#   PS_SRCDIR      the top of the source tree
# and optionally:
#   KEEP=1                 keep the test's temporary folder
#   PORTSHIM_ASAN_RUNTIME  a sanitizer runtime (libasan.so) to preload in
#                          front of a sanitizer-built shim, which cannot be
#                          loaded into uninstrumented programs otherwise
#   PORTSHIM_ASAN_OPTIONS  ASAN_OPTIONS for those programs (default: no
#                          leak detection, since the host programs are not
#                          ours)
#
# What the library sets up for the test:
#   T          a fresh temporary folder, removed at exit unless KEEP=1
#   PORTSHIM   the command to run portshim with (always use it, never
#              PORTSHIM_BIN directly: it adds the sanitizer runtime)
#   with_shim  a command prefix that preloads the shim without
#              `portshim run` (again with the sanitizer runtime)
#   PY         Debian's /usr/bin/python3 (another python3 may come first
#              on PATH, without Debian's modules)
#   PSTCP      the pstcp helper
#   PORTSHIM_REGISTRY (exported) a registry of the test's own, in $T
#
# Every program started with `bg` runs in its own process group and is
# killed, group and all, when the test exits, however it exits.

set -eu

ps_tap_count=0
ps_tap_failed=0
ps_bg_pids=""
ps_last_pid=""

PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
    PY=$(command -v python3 || echo python3)
fi

: "${PS_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${PS_HELPERS:=$PS_SRCDIR/tests/helpers}"
: "${PORTSHIM_BIN:=$PS_SRCDIR/src/cli/portshim}"
PSTCP=$PS_HELPERS/pstcp

# portshim finds the preload library of its own build tree; make check
# names it anyway, so that the library under test is never another one.
if [ -n "${PORTSHIM_LIB:-}" ] && [ -z "${PORTSHIM_LIBRARY:-}" ]; then
    PORTSHIM_LIBRARY=$PORTSHIM_LIB
    export PORTSHIM_LIBRARY
fi

# Variables of an enclosing portshim group must not leak into the test:
# the test makes its own groups.
unset PORTSHIM_PORTS PORTSHIM_GROUP PORTSHIM_GROUP_FROM PORTSHIM_MAP_FILE \
    PORTSHIM_RANGE PORTSHIM_UNMAPPED PORTSHIM_ON_ERROR PORTSHIM_BYPASS \
    PORTSHIM_KEEP_ENV PORTSHIM_GROUP_OWNER PORTSHIM_REPORT PORTSHIM_KEEPER \
    PORTSHIM_REGISTRY_FD PORTSHIM_PER_JOB PORTSHIM_JOB PORTSHIM_WARNED

# Proxies in the environment would send the test's HTTP clients away.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

T=$(mktemp -d "${TMPDIR:-/tmp}/portshim-test.XXXXXX")
PORTSHIM_REGISTRY=$T/registry
export PORTSHIM_REGISTRY

# ---------------------------------------------------------------- TAP

# ok DESC: reports a passed test.
ok() {
    ps_tap_count=$((ps_tap_count + 1))
    echo "ok $ps_tap_count - $*"
}

# not_ok DESC: reports a failed test.
not_ok() {
    ps_tap_count=$((ps_tap_count + 1))
    ps_tap_failed=$((ps_tap_failed + 1))
    echo "not ok $ps_tap_count - $*"
}

# check DESC CMD...: runs CMD; passes if it exits 0. Its output is shown
# as diagnostics when it fails.
check() {
    ps_desc=$1
    shift
    if "$@" >"$T/.check.out" 2>&1; then
        ok "$ps_desc"
    else
        not_ok "$ps_desc"
        diag "command failed: $*"
        diag_file "$T/.check.out"
    fi
}

# is GOT WANT DESC: passes if the two strings are equal. On failure the
# standard error of the last `capture` is shown too.
is() {
    if [ "$1" = "$2" ]; then
        ok "$3"
    else
        not_ok "$3"
        diag "got:  '$1'"
        diag "want: '$2'"
        diag_file "$T/.capture.err"
    fi
    : >"$T/.capture.err"
}

# like FILE REGEX DESC: passes if a line of FILE matches the extended REGEX.
like() {
    if grep -Eq -- "$2" "$1"; then
        ok "$3"
    else
        not_ok "$3"
        diag "no line matches: $2"
        diag_file "$1"
    fi
}

# capture CMD...: runs CMD, prints its standard output and keeps its
# standard error aside (shown by a failing `is`); never fails, so that
# got=$(capture ...) works under set -e.
capture() {
    "$@" 2>"$T/.capture.err" || true
}

# skip REASON [DESC]: reports a skipped test.
skip() {
    ps_tap_count=$((ps_tap_count + 1))
    echo "ok $ps_tap_count - ${2:-skipped} # SKIP $1"
}

# skip_all REASON: the whole test does not apply here; exits.
skip_all() {
    echo "1..0 # SKIP $1"
    exit 0
}

# diag MSG: a diagnostic line (shown in the test's log).
diag() {
    echo "# $*"
}

# diag_file FILE: shows a file (a server's log, say) as diagnostics.
diag_file() {
    if [ -s "$1" ]; then
        sed 's/^/#   /' "$1"
    fi
}

# bail_out MSG: stops the whole test at once.
bail_out() {
    echo "Bail out! $*"
    exit 99
}

# done_testing: prints the plan. The exit status stays 0 when tests
# failed: the TAP driver counts the "not ok" lines, and a non-zero status
# would count each failure twice.
done_testing() {
    echo "1..$ps_tap_count"
    exit 0
}

# ---------------------------------------------------------------- processes

# bg LOG CMD...: starts CMD in the background, in its own process group,
# with stdout and stderr in LOG; its pid is in $ps_last_pid. The cleanup
# at exit kills it.
bg() {
    ps_log=$1
    shift
    if command -v setsid >/dev/null 2>&1; then
        # A background job of a non-interactive shell is not a group
        # leader, so setsid execs CMD in place: $! is CMD's pid and its
        # process group id.
        setsid "$@" >"$ps_log" 2>&1 </dev/null &
    else
        "$@" >"$ps_log" 2>&1 </dev/null &
    fi
    ps_last_pid=$!
    ps_bg_pids="$ps_bg_pids $ps_last_pid"
}

# alive PID: true if the process exists and is not a zombie.
alive() {
    [ -d "/proc/$1" ] || return 1
    ps_state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' \
        "/proc/$1/status" 2>/dev/null || true)
    [ -n "$ps_state" ] && [ "$ps_state" != Z ]
}

# wait_exit PID TIMEOUT: waits up to TIMEOUT seconds for PID to end.
wait_exit() {
    ps_n=$(($2 * 10))
    while [ "$ps_n" -gt 0 ]; do
        alive "$1" || return 0
        sleep 0.1
        ps_n=$((ps_n - 1))
    done
    return 1
}

# sleeps PID: how many times PID has gone to sleep so far (its voluntary
# context switches); empty once it is gone.
sleeps() {
    sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "/proc/$1/status" \
        2>/dev/null || true
}

# wait_polling PID N TIMEOUT: waits until PID, a process that polls and
# sleeps between its checks, has gone to sleep N more times while still
# running: the positive sign that it keeps waiting rather than having
# returned. False if PID ends first (or after TIMEOUT seconds, a safety
# net only).
wait_polling() {
    wp_base=$(sleeps "$1")
    [ -n "$wp_base" ] || return 1
    wp_n=$(($3 * 100))
    while [ "$wp_n" -gt 0 ]; do
        alive "$1" || return 1
        wp_now=$(sleeps "$1")
        [ -n "$wp_now" ] || return 1
        [ "$wp_now" -ge $((wp_base + $2)) ] && alive "$1" && return 0
        sleep 0.01
        wp_n=$((wp_n - 1))
    done
    return 1
}

# kill_tree PID: sends SIGTERM to PID's process group (or to PID alone
# if it leads none), then SIGKILL after 5 seconds.
kill_tree() {
    kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
    if ! wait_exit "$1" 5; then
        kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null ||
            true
    fi
}

# ps_at_exit FN: calls FN (a function of the test's) at exit, before
# the background programs are stopped.
ps_exit_hooks=""
ps_at_exit() {
    ps_exit_hooks="$ps_exit_hooks $1"
}

ps_cleanup() {
    ps_status=$?
    set +e
    for ps_hook in $ps_exit_hooks; do
        "$ps_hook"
    done
    for ps_pid in $ps_bg_pids; do
        kill -TERM -- "-$ps_pid" 2>/dev/null || kill -TERM "$ps_pid" \
            2>/dev/null
    done
    for ps_pid in $ps_bg_pids; do
        if ! wait_exit "$ps_pid" 5; then
            kill -KILL -- "-$ps_pid" 2>/dev/null ||
                kill -KILL "$ps_pid" 2>/dev/null
        fi
        # Process groups can outlive their leader.
        kill -KILL -- "-$ps_pid" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "# KEEP=1: leaving $T"
    else
        rm -rf "$T"
    fi
    exit "$ps_status"
}
trap ps_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# The sanitizer build's shim needs its runtime loaded first; wrap the
# program so that only portshim and what it runs get it, not the test's
# own shell, awk or sed.
if [ -n "${PORTSHIM_ASAN_RUNTIME:-}" ]; then
    PORTSHIM=$T/portshim
    cat >"$PORTSHIM" <<EOF
#!/bin/sh
ASAN_OPTIONS='${PORTSHIM_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}'
LD_PRELOAD='$PORTSHIM_ASAN_RUNTIME'\${LD_PRELOAD:+:\$LD_PRELOAD}
export ASAN_OPTIONS LD_PRELOAD
exec '$PORTSHIM_BIN' "\$@"
EOF
    chmod +x "$PORTSHIM"
else
    PORTSHIM=$PORTSHIM_BIN
fi

# with_shim CMD...: runs CMD with the build's shim preloaded directly
# (no `portshim run`; the caller exports the PORTSHIM_* variables it
# wants), with the sanitizer runtime in front of it in the sanitizer
# build.
SHIM_PRELOAD=${PORTSHIM_ASAN_RUNTIME:+$PORTSHIM_ASAN_RUNTIME:}${PORTSHIM_LIB:-}
SHIM_ASAN_OPTIONS=${PORTSHIM_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
with_shim() {
    env LD_PRELOAD="$SHIM_PRELOAD" ASAN_OPTIONS="$SHIM_ASAN_OPTIONS" "$@"
}

# fixed_port_suite WHAT PASSED WORKERS VAR: the checks of a test runner's
# suite whose files each serve one fixed port and talk to it while the
# others run (data/mocha_suite/fixed_port.js), run by the caller's
# `suite_run NAME [VAR=VALUE...]` (status in r_status, output in
# $T/NAME.log, the files' notes in $T/NAME/): with portshim's defaults the
# suite passes (its log matches PASSED) in the workers WORKERS (their VAR
# values, sorted, each followed by a space); with one group for all
# workers (PORTSHIM_GROUP_FROM empty) the servers clash.
# shellcheck disable=SC2154 # r_status: set by the caller's suite_run
fixed_port_suite() {
    suite_run defaults
    if [ "$r_status" -eq 0 ] && grep -q "$2" "$T/defaults.log"; then
        ok "$1: the 4 fixed-port files pass"
    else
        not_ok "$1: the 4 fixed-port files pass (status $r_status)"
        diag_file "$T/defaults.log"
    fi
    fps_workers=$(cat "$T"/defaults/worker-* 2>/dev/null | sort -u |
        tr '\n' ' ')
    is "$fps_workers" "$3" "they ran in 4 workers ($4)"
    suite_run onegroup PORTSHIM_GROUP_FROM=
    if [ "$r_status" -ne 0 ] && grep -q 'EADDRINUSE' "$T/onegroup.log"; then
        ok "with one group for all workers (PORTSHIM_GROUP_FROM empty) they clash"
    else
        not_ok "with one group for all workers (PORTSHIM_GROUP_FROM empty) they clash (status $r_status)"
        diag_file "$T/onegroup.log"
    fi
}

# ---------------------------------------------------------------- ports

# map_real FILE PROTO VPORT: prints the real port of VPORT in a mapping
# file (nothing if absent).
map_real() {
    [ -r "$1" ] || return 0
    awk -v p="$2" -v v="$3" \
        '$1 == p && $2 == v { print $3; exit }' "$1" 2>/dev/null || true
}

# ps_net SECONDS: the bound of a wait for something that must happen:
# SECONDS, but 60 at least. Such a bound is only a safety net against a
# hang, and a loaded machine makes every step slower.
ps_net() {
    if [ "$1" -lt 60 ]; then echo 600; else echo $(($1 * 10)); fi
}

# wait_for_map FILE VPORT TIMEOUT: waits until the mapping file shows a
# TCP real port for VPORT (TIMEOUT seconds, 60 at least: see ps_net).
wait_for_map() {
    ps_n=$(ps_net "$3")
    while [ "$ps_n" -gt 0 ]; do
        [ -n "$(map_real "$1" tcp "$2")" ] && return 0
        sleep 0.1
        ps_n=$((ps_n - 1))
    done
    return 1
}

# listening PORT: true if a TCP socket listens on PORT (any address).
# Reads /proc/net/tcp and /proc/net/tcp6, so it needs no extra tool.
listening() {
    ps_hex=$(printf '%04X' "$1")
    awk -v port="$ps_hex" '
        $4 == "0A" { split($2, a, ":"); if (a[2] == port) found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# listen_addrs PORT: prints the local addresses (hex, as the kernel
# writes them) of the TCP sockets listening on PORT, one a line.
listen_addrs() {
    ps_hex=$(printf '%04X' "$1")
    awk -v port="$ps_hex" '
        $4 == "0A" { split($2, a, ":"); if (a[2] == port) print a[1] }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_tcp HOST PORT TIMEOUT: waits until a TCP connection to HOST:PORT
# succeeds (the connecting program is not under the shim); TIMEOUT
# seconds, 60 at least (see ps_net).
wait_tcp() {
    ps_n=$(ps_net "$3")
    while [ "$ps_n" -gt 0 ]; do
        "$PSTCP" connect "$1" "$2" >/dev/null 2>&1 && return 0
        sleep 0.1
        ps_n=$((ps_n - 1))
    done
    return 1
}

# nginx_conf DIR WORKERS LISTEN TEXT [DIRECTIVE]: writes DIR/nginx.conf
# for a test nginx: WORKERS worker processes, its pid file, error log and
# temporary paths in DIR, no access log, one server on LISTEN that
# answers TEXT; DIRECTIVE (e.g. "daemon off;") is added at the top level.
nginx_conf() {
    cat >"$1/nginx.conf" <<CONF
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log;
${5:-}
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    server {
        listen $3;
        location / { return 200 "$4"; }
    }
}
CONF
}

# free_port LO HI: prints a TCP port in [LO, HI] that nothing holds.
free_port() {
    "$PSTCP" free "$1" "$2"
}

# has_ipv6_loopback: true if ::1 can be bound here.
has_ipv6_loopback() {
    "$PSTCP" bind ::1 0 >/dev/null 2>&1
}

# HTTP_GET: a Python program that prints the body at URL ($1), ignoring
# proxies. Run it as: "$PY" -c "$HTTP_GET" URL
# shellcheck disable=SC2034 # used by the tests that source this file
HTTP_GET='
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(sys.argv[1], timeout=10) as r:
    sys.stdout.write(r.read().decode())
'

[ -x "$PSTCP" ] || bail_out "$PSTCP is missing (run through make check)"
[ -x "$PORTSHIM_BIN" ] ||
    bail_out "$PORTSHIM_BIN is missing (run through make check)"
