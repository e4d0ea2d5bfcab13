#!/bin/sh
# SPDX-License-Identifier: MIT
# bad_registry.sh - a registry the shim must refuse, seen from a program.
#
# For each kind of bad registry file (garbage, zero-length, truncated,
# world-writable, another user's, a symlink, a directory), a tagged bind
# under the preloaded shim:
#   PORTSHIM_ON_ERROR=fail  fails, with exactly one "portshim[PID]:" line
#                           that names the file and says how to fix it;
#   PORTSHIM_ON_ERROR=pass  goes through unmodified (the kernel sees the
#                           port that was asked for);
# the program never dies of a signal, and the file is left as it was.
#
# Then a range with one real port: the second virtual port of a group
# fails with EADDRNOTAVAIL and one log line, without waiting for the
# port its own process holds; once that group's process is gone, another
# group gets the port (its dead lease is reclaimed by the allocation).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -n "${PORTSHIM_LIB:-}" ] || bail_out "PORTSHIM_LIB is not set"

# shim [NAME=VALUE...] CMD...: runs CMD with the shim preloaded (after
# the sanitizer runtime, in a sanitizer build) and the variables given.
PRELOAD=${PORTSHIM_ASAN_RUNTIME:+$PORTSHIM_ASAN_RUNTIME:}$PORTSHIM_LIB
ASANOPTS=${PORTSHIM_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
shim() {
    env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" "$@"
}

P=$(free_port 41000 41999)
PORTSHIM_PORTS=$P
PORTSHIM_GROUP=bad
export PORTSHIM_PORTS PORTSHIM_GROUP

# A valid registry to spoil, made by the checker (which creates it).
"$PSSTRESS" regcheck "$T/good" >/dev/null
GOOD=$T/good

# case_check NAME HINT: runs both modes against the file at $REG; HINT is
# a piece of the fix the log line must give.
case_check() {
    name=$1
    hint=$2
    cp -P "$REG" "$T/before" 2>/dev/null || true

    status=0
    shim PORTSHIM_REGISTRY="$REG" PORTSHIM_ON_ERROR=fail \
        "$PSTCP" bind 127.0.0.1 "$P" >"$T/out" 2>"$T/err" || status=$?
    lines=$(grep -c '^portshim\[' "$T/err" || true)
    if [ "$status" = 1 ] && [ "$lines" = 1 ] &&
        grep '^portshim\[' "$T/err" | grep -qF "$REG" &&
        grep '^portshim\[' "$T/err" | grep -qF "$hint"; then
        ok "$name, ON_ERROR=fail: the bind fails ($(cat "$T/out")) with one line naming the file"
        diag "$(grep '^portshim\[' "$T/err")"
    else
        not_ok "$name, ON_ERROR=fail: the bind fails with one line naming the file"
        diag "exit status $status, $lines log lines, output: $(cat "$T/out")"
        diag_file "$T/err"
    fi

    # pass: through unmodified, as the kernel sees it.
    bg "$T/pass.log" env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
        PORTSHIM_REGISTRY="$REG" PORTSHIM_ON_ERROR=pass \
        "$PSTCP" listen 127.0.0.1 "$P" pass
    pid=$ps_last_pid
    n=50
    while [ "$n" -gt 0 ] && ! listening "$P"; do
        sleep 0.1
        n=$((n - 1))
    done
    if listening "$P" && alive "$pid"; then
        ok "$name, ON_ERROR=pass: the server listens on port $P itself"
    else
        not_ok "$name, ON_ERROR=pass: the server listens on port $P itself"
        diag_file "$T/pass.log"
    fi
    kill_tree "$pid"
    wait "$pid" 2>/dev/null || true
    n=50
    while [ "$n" -gt 0 ] && listening "$P"; do
        sleep 0.1
        n=$((n - 1))
    done

    if [ -e "$T/before" ] || [ -L "$T/before" ]; then
        if [ -d "$REG" ] || cmp -s "$T/before" "$REG"; then
            ok "$name: the file is left as it was"
        else
            not_ok "$name: the file is left as it was"
        fi
        rm -rf "$T/before"
    fi
}

REG=$T/garbage
head -c "$(wc -c <"$GOOD")" /dev/urandom >"$REG"
chmod 600 "$REG"
case_check "random bytes of a registry's size" "bad magic"

REG=$T/empty
: >"$REG"
chmod 600 "$REG"
case_check "a zero-length file" "portshim gc --reset"

REG=$T/short
cp "$GOOD" "$REG"
truncate -s 4096 "$REG"
case_check "a truncated registry" "portshim gc --reset"

REG=$T/open
cp "$GOOD" "$REG"
chmod 666 "$REG"
case_check "a world-writable registry" "portshim gc --reset"

if [ "$(id -u)" = 0 ]; then
    REG=$T/foreign
    cp "$GOOD" "$REG"
    chown 65534:65534 "$REG"
    case_check "another user's registry" "uid 65534"
else
    skip "not root" "another user's registry"
fi

REG=$T/link
ln -s "$GOOD" "$REG"
case_check "a symlink to a registry" "symbolic link"

REG=$T/dir
mkdir "$REG"
case_check "a directory" "directory"

# ------------------------------------------------ a range that is full
R=$(free_port 42000 42999)
VA=$(free_port 43000 43499)
VB=$((VA + 1))
REGX=$T/ranged
cat >"$T/twobinds.py" <<'EOF'
import socket, sys
res = []
for p in sys.argv[1:]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", int(p)))
        res.append("ok")
    except OSError as e:
        res.append(str(e.errno))
print(" ".join(res))
EOF
# The program holds the range's one port itself (its first bind), so a
# shim that waited for a port to free up would wait forever: the bind
# must fail and the program end by itself (timeout only ends a hang).
rc=0
got=$(timeout 120 env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
    PORTSHIM_REGISTRY="$REGX" PORTSHIM_RANGE="$R-$R" \
    PORTSHIM_PORTS="$VA-$VB" PORTSHIM_GROUP=full1 \
    "$PY" "$T/twobinds.py" "$VA" "$VB" 2>"$T/full.err") || rc=$?
is "$got" "ok 99" "a range of one port: the second vport gets EADDRNOTAVAIL"
is "$rc" 0 "exhaustion fails without waiting for the port its process holds"
is "$(grep -c '^portshim\[' "$T/full.err" || true)" 1 "with one log line"
if grep -q "no free port left in PORTSHIM_RANGE $R-$R" "$T/full.err"; then
    ok "the line says the range is full and how to widen it"
else
    not_ok "the line says the range is full and how to widen it"
    diag_file "$T/full.err"
fi

# full1's process is gone: its lease is dead and is reclaimed.
got=$(timeout 20 env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
    PORTSHIM_REGISTRY="$REGX" PORTSHIM_RANGE="$R-$R" \
    PORTSHIM_PORTS="$VA-$VB" PORTSHIM_GROUP=full2 \
    "$PY" "$T/twobinds.py" "$VB" 2>"$T/full2.err" || true)
is "$got" "ok" "another group gets the port of the dead group's lease"
"$PSSTRESS" regcheck "$REGX" >"$T/ranged.txt"
is "$(awk '$4 == '"$R"' { print $1, $3 }' "$T/ranged.txt")" "full2 $VB" \
    "the registry now gives real port $R to full2's vport $VB"

done_testing
