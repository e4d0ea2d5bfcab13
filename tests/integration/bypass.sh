#!/bin/sh
# SPDX-License-Identifier: MIT
# bypass.sh - a program that escapes the shim is never silent.
#
# Programs the preload cannot see (built here: a static C program, a
# C program carrying the Go toolchain's .go.buildinfo section, a real Go
# net.Listen program when Go is installed, a setuid copy) are reported by
# `portshim run` and at every exec or posix_spawn from a wrapped process
# (sh, env's execvp, Python's posix_spawn and vfork-based subprocess);
# PORTSHIM_BYPASS=fail refuses them (exit 126, EPERM from exec), ignore
# says nothing. A child started with a scrubbed environment (env -i,
# env -u) is reported, and with PORTSHIM_KEEP_ENV=1 gets the variables
# back and really is under the shim: its tagged bind gets a real port
# from the registry. syscall(SYS_bind/connect/sendto, ...) are rewritten
# like the libc calls. `portshim doctor` is checked line by line.
#
# Each warning is compared as the user sees it, whole.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSRAW=$PS_HELPERS/psraw
CC=${CC:-cc}
[ -x "$PSRAW" ] || bail_out "$PSRAW is missing (run through make check)"
command -v "$CC" >/dev/null 2>&1 || skip_all "no C compiler ($CC)"

# run_cmd NAME CMD...: runs CMD; its stdout, stderr (with the pids of
# portshim's log lines replaced by PID) and status go to $T/NAME.out,
# $T/NAME.err and $T/NAME.rc.
run_cmd() {
    rc_name=$1
    shift
    rc=0
    "$@" >"$T/$rc_name.out" 2>"$T/$rc_name.raw" || rc=$?
    sed 's/^portshim\[[0-9]*\]: /portshim[PID]: /' "$T/$rc_name.raw" \
        >"$T/$rc_name.err"
    echo "$rc" >"$T/$rc_name.rc"
}

# is_file FILE WANT DESC: passes if FILE holds exactly the text WANT.
is_file() {
    got=$(cat "$1")
    if [ "$got" = "$2" ]; then
        ok "$3"
    else
        not_ok "$3"
        diag "got:"
        diag_file "$1"
        diag "want:"
        printf '%s\n' "$2" | sed 's/^/#   /'
    fi
}

# The lines a user sees (portshim run's, then the shim's in a child).
static_reason="is statically linked, so no dynamic loader runs to preload the library"
static_advice="Run it under 'portshim run --supervise' (PORTSHIM_BYPASS=supervise) or give it free ports yourself"
go_reason="is a Go program, which makes its network system calls itself instead of through libc"
go_advice=$static_advice
# warn_line PREFIX PROG REASON ADVICE / fail_line ...
warn_line() {
    printf '%s: warning: %s %s: portshim cannot move its ports, it binds them as asked. %s (PORTSHIM_BYPASS=ignore silences this)' \
        "$1" "$2" "$3" "$4"
}
fail_line() {
    printf '%s: refusing to run %s (PORTSHIM_BYPASS=fail): it %s, and portshim could not move its ports. %s (PORTSHIM_BYPASS=warn runs it anyway)' \
        "$1" "$2" "$3" "$4"
}

# ------------------------------------------------ the programs
cat >"$T/hello.c" <<'EOF'
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
EOF
cat >"$T/golike.c" <<'EOF'
#include <stdio.h>
__attribute__((section(".go.buildinfo"), used))
static const char buildinfo[32] = "\xff Go buildinf:";
int main(void) { puts("go-like"); return 0; }
EOF
"$CC" -o "$T/golike" "$T/golike.c" || bail_out "cannot compile golike.c"

STATIC=
if "$CC" -static -o "$T/static" "$T/hello.c" 2>"$T/static.log" &&
    "$CC" -static -D_GNU_SOURCE -o "$T/static-pstcp" \
        "$PS_SRCDIR/tests/helpers/pstcp.c" \
        2>>"$T/static.log"; then
    STATIC=$T/static
else
    diag "no static C library; the static cases are skipped"
fi

# A real Go program, built offline with a module of its own.
GO=
if command -v go >/dev/null 2>&1; then
    mkdir "$T/gosrc"
    cat >"$T/gosrc/main.go" <<'EOF'
package main

import (
	"fmt"
	"net"
	"os"
)

// Listens on os.Args[1] (":8080" by default) and prints the port it got.
func main() {
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening", l.Addr().(*net.TCPAddr).Port)
	l.Close()
}
EOF
    printf 'module example.com/golisten\n\ngo 1.16\n' >"$T/gosrc/go.mod"
    if (cd "$T/gosrc" && env GOCACHE="$T/gocache" GOPATH="$T/gopath" \
        GOENV=off GOFLAGS=-buildvcs=false GOPROXY=off GO111MODULE=on \
        go build -o "$T/golisten" .) >"$T/go.log" 2>&1; then
        GO=$T/golisten
    else
        diag "go build failed; the real Go cases are skipped"
        diag_file "$T/go.log"
    fi
fi

# ------------------------------------------------ doctor before any run
# Nothing has made the test's registry yet: doctor must not create it.
run_cmd doc0 "$PORTSHIM" doctor
is "$(cat "$T/doc0.rc")" 0 "doctor without CMD exits 0 on this host"
is "$(grep '^ok: registry' "$T/doc0.out")" \
    "ok: registry $T/registry does not exist yet; it is created at first use" \
    "doctor: a registry that does not exist yet is fine"
if [ -e "$T/registry" ]; then
    not_ok "doctor did not create the registry"
else
    ok "doctor did not create the registry"
fi

# ------------------------------------------------ doctor on an env shim
# A script run through env(1) ("#!/usr/bin/env NAME", as pyenv's shims
# and many launchers are): doctor looks at the NAME that env finds in
# PATH, not at env.
mkdir "$T/envbin"
ln -s "$PSTCP" "$T/envbin/psinterp"
printf '#!/usr/bin/env psinterp\n' >"$T/envshim"
chmod +x "$T/envshim"
run_cmd doc1 env PATH="$T/envbin:$PATH" "$PORTSHIM" doctor "$T/envshim"
check "doctor on an env shim reports on the interpreter env finds" \
    grep -q "^ok: $T/envshim runs under $T/envbin/psinterp (found by /usr/bin/env in PATH), which is dynamically linked" \
    "$T/doc1.out"
check "and not on env itself" sh -c "! grep -q 'runs under /usr/bin/env,' '$T/doc1.out'"

# ------------------------------------------------ static binaries
if [ -n "$STATIC" ]; then
    run_cmd st1 "$PORTSHIM" run -- "$STATIC"
    is_file "$T/st1.out" "hello" "portshim run: the static program runs"
    is_file "$T/st1.err" \
        "$(warn_line portshim "$STATIC" "$static_reason" "$static_advice")" \
        "portshim run: one warning line for the static program"

    run_cmd st2 "$PORTSHIM" run -- sh -c "\"$STATIC\""
    is_file "$T/st2.err" \
        "$(warn_line 'portshim[PID]' "$STATIC" "$static_reason" "$static_advice")" \
        "exec from a wrapped shell: one warning line"

    run_cmd st3 env PORTSHIM_BYPASS=fail "$PORTSHIM" run -- "$STATIC"
    is "$(cat "$T/st3.rc"):$(cat "$T/st3.out")" "126:" \
        "PORTSHIM_BYPASS=fail: portshim run exits 126 without running it"
    is_file "$T/st3.err" \
        "$(fail_line portshim "$STATIC" "$static_reason" "$static_advice")" \
        "PORTSHIM_BYPASS=fail: portshim run says why"

    run_cmd st4 env PORTSHIM_BYPASS=fail "$PORTSHIM" run -- \
        sh -c "\"$STATIC\"; echo status \$?"
    is_file "$T/st4.out" "status 126" \
        "PORTSHIM_BYPASS=fail: the shell's exec fails (status 126)"
    is "$(sed -n 1p "$T/st4.err")" \
        "$(fail_line 'portshim[PID]' "$STATIC" "$static_reason" "$static_advice")" \
        "PORTSHIM_BYPASS=fail: the refusal is explained"
    is "$(sed -n 2p "$T/st4.err")" \
        "sh: 1: $STATIC: Operation not permitted" \
        "PORTSHIM_BYPASS=fail: exec gets EPERM"

    run_cmd st5 env PORTSHIM_BYPASS=ignore "$PORTSHIM" run -- \
        sh -c "\"$STATIC\""
    is "$(cat "$T/st5.out")|$(cat "$T/st5.err")" "hello|" \
        "PORTSHIM_BYPASS=ignore: it runs and nothing is said"

    # The warning is true: the static program binds the tagged port as
    # asked, not a real port of the group.
    P=$(free_port 42000 42999)
    run_cmd st6 "$PORTSHIM" run --ports "$P" -- "$T/static-pstcp" bind \
        127.0.0.1 "$P"
    is_file "$T/st6.out" "$P" \
        "the static program's tagged bind is not moved, as warned"
else
    skip "no static C library" "static program: warnings and refusal"
fi

# ------------------------------------------------ Go-like (a section)
run_cmd gl1 "$PORTSHIM" run -- "$T/golike"
is_file "$T/gl1.out" "go-like" "portshim run: the Go-like program runs"
is_file "$T/gl1.err" \
    "$(warn_line portshim "$T/golike" "$go_reason" "$go_advice")" \
    "portshim run: a .go.buildinfo section makes a Go warning"

W=$(warn_line 'portshim[PID]' "$T/golike" "$go_reason" "$go_advice")
run_cmd gl2 "$PORTSHIM" run -- sh -c "\"$T/golike\""
is_file "$T/gl2.err" "$W" "execve from a wrapped shell: Go warning"

# env runs its command with execvp; relative name through PATH.
run_cmd gl3 env PATH="$T:$PATH" "$PORTSHIM" run -- env golike
is_file "$T/gl3.err" "$W" "execvp (env CMD) through PATH: Go warning"

# One run each: a run writes each program's warning once.
run_cmd gl4 env PATH="$T:$PATH" "$PORTSHIM" run -- "$PY" -c '
import os, sys
pid = os.posix_spawn(sys.argv[1], [sys.argv[1]], os.environ)
os.waitpid(pid, 0)' "$T/golike"
run_cmd gl4p env PATH="$T:$PATH" "$PORTSHIM" run -- "$PY" -c '
import os, sys
pid = os.posix_spawnp("golike", ["golike"], os.environ)
os.waitpid(pid, 0)'
is_file "$T/gl4.err" "$W" "posix_spawn: Go warning"
is_file "$T/gl4p.err" "$W" "posix_spawnp: Go warning"

run_cmd gl5 "$PORTSHIM" run -- "$PY" -c '
import subprocess, sys
subprocess.run([sys.argv[1]], check=True)' "$T/golike"
is_file "$T/gl5.err" "$W" "Python subprocess (vfork + exec): Go warning"

run_cmd gl6 env PORTSHIM_BYPASS=fail "$PORTSHIM" run -- "$PY" -c '
import os, sys
try:
    os.execv(sys.argv[1], [sys.argv[1]])
except OSError as e:
    print("execv", e.strerror)
try:
    os.posix_spawn(sys.argv[1], [sys.argv[1]], os.environ)
except OSError as e:
    print("posix_spawn", e.strerror)' "$T/golike"
is_file "$T/gl6.out" "execv Operation not permitted
posix_spawn Operation not permitted" \
    "PORTSHIM_BYPASS=fail: execv fails and posix_spawn returns EPERM"

run_cmd gl7 env PORTSHIM_BYPASS=fail "$PORTSHIM" run -- "$T/golike"
is "$(cat "$T/gl7.rc")" 126 "PORTSHIM_BYPASS=fail: portshim run exits 126"

# ------------------------------------------------ a real Go program
if [ -n "$GO" ]; then
    P=$(free_port 43000 43999)
    run_cmd go1 "$PORTSHIM" run --ports "$P" -- "$GO" "127.0.0.1:$P"
    is_file "$T/go1.out" "listening $P" \
        "Go net.Listen on tagged $P binds $P as asked: portshim cannot see it"
    is_file "$T/go1.err" \
        "$(warn_line portshim "$GO" "$go_reason" "$go_advice")" \
        "portshim run warns about the Go program"
    run_cmd go2 "$PORTSHIM" run --ports "$P" -- sh -c "\"$GO\" 127.0.0.1:$P"
    is_file "$T/go2.err" \
        "$(warn_line 'portshim[PID]' "$GO" "$go_reason" "$go_advice")" \
        "a wrapped shell's exec of the Go program warns"
    run_cmd go3 env PORTSHIM_BYPASS=fail "$PORTSHIM" run --ports "$P" -- \
        sh -c "\"$GO\" 127.0.0.1:$P; echo status \$?"
    is_file "$T/go3.out" "status 126" \
        "PORTSHIM_BYPASS=fail: the Go program does not run"
    run_cmd go4 env PORTSHIM_BYPASS=fail "$PORTSHIM" run -- "$GO"
    is "$(cat "$T/go4.rc"):$(cat "$T/go4.out")" "126:" \
        "PORTSHIM_BYPASS=fail: portshim run refuses the Go program"
else
    skip "Go is not installed or cannot build offline" "a real Go program"
fi

# ------------------------------------------------ setuid
nosuid=
if command -v findmnt >/dev/null 2>&1; then
    case ,$(findmnt -n -o OPTIONS -T "$T" 2>/dev/null), in
    *,nosuid,*) nosuid=1 ;;
    esac
fi
if [ "$(id -u)" != 0 ]; then
    skip "needs root to make a copy setuid to another user" "setuid copy"
elif [ -n "$nosuid" ]; then
    skip "$T is on a nosuid mount" "setuid copy"
elif [ -n "${PORTSHIM_ASAN_RUNTIME:-}" ]; then
    skip "a sanitizer build" "setuid copy"
else
    # Setuid to user 65534: run by root, the ids change, and the loader
    # runs in secure mode without LD_PRELOAD.
    chmod 755 "$T"
    cp "$PSTCP" "$T/suid-pstcp"
    chown 65534 "$T/suid-pstcp"
    chmod 4755 "$T/suid-pstcp"
    suid_reason="is setuid (runs as uid 65534), so the dynamic loader ignores LD_PRELOAD"
    suid_advice="Run an unprivileged copy of it, or run it under 'portshim run --supervise'"
    P=$(free_port 44000 44999)
    run_cmd su1 "$PORTSHIM" run --ports "$P" -- "$T/suid-pstcp" bind \
        127.0.0.1 "$P"
    is_file "$T/su1.err" \
        "$(warn_line portshim "$T/suid-pstcp" "$suid_reason" "$suid_advice")" \
        "a setuid copy is detected"
    is_file "$T/su1.out" "$P" "... and its tagged bind is not moved, as warned"
    run_cmd su2 "$PORTSHIM" run -- sh -c "\"$T/suid-pstcp\" bind 127.0.0.1 0 >/dev/null"
    is_file "$T/su2.err" \
        "$(warn_line 'portshim[PID]' "$T/suid-pstcp" "$suid_reason" "$suid_advice")" \
        "a wrapped shell's exec of the setuid copy warns"
    run_cmd su3 "$PORTSHIM" doctor "$T/suid-pstcp"
    is "$(sed -n 3p "$T/su3.out")" "fail: $T/suid-pstcp $suid_reason" \
        "doctor: the setuid copy fails the privilege check"
    is "$(cat "$T/su3.rc")" 1 "doctor exits 1"
fi

# ------------------------------------------------ scrubbed environments
P=$(free_port 45000 45999)

# dropped ENVFILE: the names a scrubbed child loses, as the shim lists
# them: LD_PRELOAD, then the variables it keeps (all of envvars.h's, in
# its order) that ENVFILE (the output of env in a wrapped process) has
# with a value.
dropped() {
    dr_list=LD_PRELOAD
    dr_names=$(sed -n 's/.*X("\(PORTSHIM_[A-Z_]*\)".*/\1/p' \
        "$PS_SRCDIR/src/common/envvars.h")
    for dr_v in $dr_names; do
        if grep -q "^$dr_v=." "$1"; then
            dr_list="$dr_list, $dr_v"
        fi
    done
    echo "$dr_list"
}
"$PORTSHIM" run --ports "$P" -- env >"$T/ev-env.txt"
drop=$(dropped "$T/ev-env.txt")
run_cmd ev1 "$PORTSHIM" run --ports "$P" -- sh -c "env -i \"$PSTCP\" bind 127.0.0.1 $P"
is_file "$T/ev1.err" \
    "portshim[PID]: warning: $PSTCP is started with an environment that drops $drop: portshim is not active in it, it binds its ports as asked. Set PORTSHIM_KEEP_ENV=1 to put them back (PORTSHIM_BYPASS=ignore silences this)" \
    "env -i: the scrubbed environment is reported"
is_file "$T/ev1.out" "$P" "env -i: the child binds $P as asked, as warned"

# With PORTSHIM_KEEP_ENV=1 the child is under the shim again: its bind
# gets a real port from the registry, in the range, shown in the map.
run_cmd ev2 env PORTSHIM_KEEP_ENV=1 "$PORTSHIM" run --ports "$P" \
    --range 11000-11499 --map "$T/ev2.map" -- \
    sh -c "env -i \"$PSTCP\" bind 127.0.0.1 $P; awk -v p=$P '\$1 == \"tcp\" && \$2 == p { print \"map\", \$3 }' \"$T/ev2.map\""
is "$(cat "$T/ev2.err")" "" "PORTSHIM_KEEP_ENV=1: nothing to warn about"
real=$(sed -n 's/^map //p' "$T/ev2.out")
is "$(sed -n 1p "$T/ev2.out")" "$P" \
    "PORTSHIM_KEEP_ENV=1: the child still sees its virtual port $P"
case $real in
110[0-9][0-9] | 11[1-4][0-9][0-9]) ok "PORTSHIM_KEEP_ENV=1: the child's bind got real port $real from the registry" ;;
*)
    not_ok "PORTSHIM_KEEP_ENV=1: the child's bind got a real port from the registry"
    diag_file "$T/ev2.out"
    ;;
esac

# Only some variables dropped (env -u): the child stays under the shim,
# outside the group.
run_cmd ev3 "$PORTSHIM" run --ports "$P" -- env -u PORTSHIM_GROUP \
    -u PORTSHIM_MAP_FILE "$PSTCP" bind 127.0.0.1 0
is_file "$T/ev3.err" \
    "portshim[PID]: warning: $PSTCP is started with an environment that drops PORTSHIM_GROUP, PORTSHIM_MAP_FILE: it runs outside this group's settings. Set PORTSHIM_KEEP_ENV=1 to put them back (PORTSHIM_BYPASS=ignore silences this)" \
    "env -u: the dropped variables are named"

PORTSHIM_BYPASS=fail "$PORTSHIM" run --ports "$P" -- env >"$T/ev-env.txt"
drop=$(dropped "$T/ev-env.txt")
run_cmd ev4 env PORTSHIM_BYPASS=fail "$PORTSHIM" run --ports "$P" -- \
    sh -c "env -i \"$PSTCP\" bind 127.0.0.1 $P; echo status \$?"
is_file "$T/ev4.out" "status 126" \
    "PORTSHIM_BYPASS=fail: the scrubbed exec fails (env exits 126)"
is "$(sed -n 1p "$T/ev4.err")" \
    "portshim[PID]: refusing to run $PSTCP (PORTSHIM_BYPASS=fail): its environment drops $drop, so portshim would not be active in it. Set PORTSHIM_KEEP_ENV=1 to put them back (PORTSHIM_BYPASS=warn runs it anyway)" \
    "PORTSHIM_BYPASS=fail: the refusal names the variables"

# ------------------------------------------------ under the supervisor
# Every descendant inherits the seccomp filter: the supervisor sees what
# the preload cannot, so nothing is reported.
if [ -n "$STATIC" ] &&
    "$PORTSHIM" run --supervise -- true >/dev/null 2>&1; then
    run_cmd sv1 "$PORTSHIM" run --supervise -- sh -c \
        "\"$STATIC\"; \"$T/golike\"; env -i \"$PSTCP\" bind 127.0.0.1 0"
    is "$(cat "$T/sv1.err")" "" \
        "under --supervise: static, Go-like and env -i children are not reported"
else
    skip "no static C library, or no seccomp supervisor here" \
        "under the supervisor"
fi

# ------------------------------------------------ raw system calls
P=$(free_port 47000 47999)
U=$(free_port 48000 48999)
cat >"$T/raw.sh" <<EOF
# A raw-bound TCP server and UDP echo server, raw clients, one group.
"$PSRAW" listen 127.0.0.1 $P rawhello >"$T/raw-tcp.log" 2>&1 &
tcp=\$!
"$PSRAW" udpecho 127.0.0.1 $U >"$T/raw-udp.log" 2>&1 &
udp=\$!
n=0
until grep -q "^udp $U " "$T/raw.map" 2>/dev/null &&
    grep -q "^tcp $P " "$T/raw.map" 2>/dev/null; do
    n=\$((n + 1))
    [ \$n -lt 100 ] || break
    sleep 0.1
done
cat "$T/raw.map"
"$PSRAW" connect 127.0.0.1 $P
"$PSRAW" sendto 127.0.0.1 $U ping
kill \$tcp \$udp
EOF
run_cmd raw "$PORTSHIM" run --ports "$P,udp:$U" --range 11500-11999 \
    --map "$T/raw.map" -- sh "$T/raw.sh"
treal=$(awk -v p="$P" '$1 == "tcp" && $2 == p { print $3 }' "$T/raw.out")
ureal=$(awk -v p="$U" '$1 == "udp" && $2 == p { print $3 }' "$T/raw.out")
case $treal in
11[5-9][0-9][0-9]) ok "syscall(SYS_bind) of tagged $P got real port $treal" ;;
*)
    not_ok "syscall(SYS_bind) of tagged $P got a real port"
    diag_file "$T/raw.out"
    diag_file "$T/raw.err"
    ;;
esac
is "$(cat "$T/raw-tcp.log")" "listening $P $treal" \
    "getsockname shows the virtual port $P, the raw getsockname $treal"
is "$(grep '^ok' "$T/raw.out" | sed -n 1p)" "ok rawhello" \
    "syscall(SYS_connect) to $P reaches the server on $treal"
case $ureal in
11[5-9][0-9][0-9]) ok "UDP syscall(SYS_bind) of tagged $U got real port $ureal" ;;
*) not_ok "UDP syscall(SYS_bind) of tagged $U got a real port" ;;
esac
is "$(cat "$T/raw-udp.log")" "listening $U $ureal" \
    "UDP: getsockname shows $U, the raw getsockname $ureal"
is "$(grep '^ok' "$T/raw.out" | sed -n 2p)" "ok echo ping" \
    "syscall(SYS_sendto) to $U reaches the echo server on $ureal"

# ------------------------------------------------ doctor, line by line
read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range
uid=$(id -u)

# check_lines FILE PATTERN...: each line of FILE matches its shell
# pattern, in order, and there are as many lines as patterns.
check_lines() {
    cl_file=$1
    cl_desc=$2
    shift 2
    cl_n=0
    cl_bad=
    while IFS= read -r cl_line; do
        cl_n=$((cl_n + 1))
        if [ $# -eq 0 ]; then
            cl_bad="extra line $cl_n: $cl_line"
            break
        fi
        # shellcheck disable=SC2254 # the argument is a pattern
        case $cl_line in
        $1) ;;
        *)
            cl_bad="line $cl_n: '$cl_line' does not match '$1'"
            break
            ;;
        esac
        shift
    done <"$cl_file"
    if [ -z "$cl_bad" ] && [ $# -gt 0 ]; then
        cl_bad="missing line $((cl_n + 1)): $1"
    fi
    if [ -z "$cl_bad" ]; then
        ok "$cl_desc"
    else
        not_ok "$cl_desc"
        diag "$cl_bad"
        diag_file "$cl_file"
    fi
}

range_ok="ok: PORTSHIM_RANGE 20000-32767 (the default) does not overlap the ephemeral ports $elo-$ehi"
if [ "$elo" -le 32767 ]; then
    range_ok="warn: PORTSHIM_RANGE 20000-32767 (the default) overlaps*"
fi

run_cmd doc1 "$PORTSHIM" doctor "$PSTCP"
check_lines "$T/doc1.out" "doctor $PSTCP: every line as expected" \
    "ok: $PSTCP is dynamically linked (loader /*)" \
    "ok: $PSTCP is not a Go program, so its network calls can go through libc" \
    "ok: $PSTCP is not setuid, setgid or file-capable for uid $uid" \
    "ok: preload library /*/libportshim.so exists and loads" \
    "ok: environment: the PORTSHIM_* variables are valid" \
    "ok: registry $T/registry: yours (uid $uid), mode 0600" \
    "ok: registry $T/registry: consistent, 0 leases, 0 lock recoveries" \
    "ok: ephemeral ports (ip_local_port_range): $elo-$ehi" \
    "$range_ok" \
    "ok: reserved ports (ip_local_reserved_ports): * PORTSHIM_RANGE 20000-32767 (the default)*"
is "$(cat "$T/doc1.rc")" 0 "doctor $PSTCP exits 0"
loader=$(sed -n 's/^ok: .* is dynamically linked (loader \(.*\))$/\1/p' "$T/doc1.out")

run_cmd doc2 "$PORTSHIM" doctor "$T/golike"
check_lines "$T/doc2.out" "doctor on the Go-like program: the Go check fails" \
    "ok: $T/golike is dynamically linked (loader $loader)" \
    "fail: $T/golike $go_reason" \
    "ok: $T/golike is not setuid, setgid or file-capable for uid $uid" \
    "ok: preload library *" "ok: environment: *" "ok: registry *" \
    "ok: registry *" "ok: ephemeral ports *" "*: PORTSHIM_RANGE *" \
    "ok: reserved ports *"
is "$(cat "$T/doc2.rc")" 1 "doctor exits 1 when a check fails"

if [ -n "$STATIC" ]; then
    run_cmd doc3 "$PORTSHIM" doctor "$STATIC"
    is "$(sed -n 1p "$T/doc3.out")" "fail: $STATIC $static_reason" \
        "doctor on the static program: the loader check fails"
fi

# A script is judged by its interpreter.
printf '#!%s\n' "$T/golike" >"$T/script"
chmod 755 "$T/script"
run_cmd doc4 "$PORTSHIM" doctor "$T/script"
is "$(sed -n 2p "$T/doc4.out")" \
    "fail: $T/script runs under $T/golike, which $go_reason" \
    "doctor on a script: its interpreter is checked"

run_cmd doc5 env PATH="/nonexistent" "$PORTSHIM" doctor nosuchcommand
is "$(sed -n 1p "$T/doc5.out")" "fail: nosuchcommand: not found in PATH" \
    "doctor: a command not found in PATH"

run_cmd doc6 env PORTSHIM_RANGE=30000-40000 PORTSHIM_BYPASS=bogus \
    "$PORTSHIM" doctor
check_lines "$T/doc6.out" "doctor: bad variables and an overlapping range" \
    "ok: preload library *" \
    "fail: environment: PORTSHIM_BYPASS: 'bogus' is not a valid value, expected warn, fail, ignore or supervise" \
    "ok: registry *" "ok: registry *" "ok: ephemeral ports *" \
    "warn: PORTSHIM_RANGE 30000-40000 overlaps the ephemeral ports $elo-$ehi in *: outgoing connections can take ports portshim would hand out (it then skips them); choose a range outside $elo-$ehi" \
    "ok: reserved ports *"

chmod 644 "$T/registry"
run_cmd doc7 "$PORTSHIM" doctor
is "$(grep '^fail' "$T/doc7.out")" \
    "fail: registry $T/registry has mode 0644: other users could read or change the leases; 'portshim gc --reset' makes a fresh one" \
    "doctor: a registry others can read is a failure"
is "$(cat "$T/doc7.rc")" 1 "... and doctor exits 1"
chmod 600 "$T/registry"

# ------------------------------------------------ exports
if command -v nm >/dev/null 2>&1 && [ -n "${PORTSHIM_LIB:-}" ]; then
    exported=$(nm -D --defined-only "$PORTSHIM_LIB" | awk '{ print $3 }' |
        grep -x -E 'exec[lv]p?e?|execveat|fexecve|posix_spawnp?|syscall' |
        sort | tr '\n' ' ')
    is "$exported" "execl execle execlp execv execve execveat execvp execvpe fexecve posix_spawn posix_spawnp syscall " \
        "the library exports every exec variant, posix_spawn* and syscall"
    # What only the portshim program uses (libpstools) is not linked in.
    is "$(nm "$PORTSHIM_LIB" | awk '{ print $NF }' |
        grep -c -x -E 'ps_pick(_[a-z_]*)?|ps_registry_check|ps_mapfile_read')" 0 \
        "the preload library carries no port picking, registry check or mapping-file reader"
fi

done_testing
