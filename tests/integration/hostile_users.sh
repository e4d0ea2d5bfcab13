#!/bin/sh
# SPDX-License-Identifier: MIT
# hostile_users.sh - another user on the host cannot redirect anyone's
# connects through the files portshim shares a folder with:
#   - a --map path that user 65534 created first in a sticky folder (as
#     in /tmp) makes `run` refuse with one line before CMD runs, and so
#     does a --map in a folder anyone may write to without the sticky bit;
#     a run that claimed its --map keeps it: the other user cannot
#     replace it later;
#   - /dev/shm/portshim-<uid> made first by user 65534 (anyone can create
#     in /dev/shm): the victim's runs use $XDG_RUNTIME_DIR/portshim
#     instead and say so in one line. The victim is a uid of the test's
#     own (100000 + its pid), so no real user's directory is touched;
#   - two users' groups never share a real port: root's server stops
#     (its lease is kept), user 65534 allocates from the same range in its
#     own registry and gets another port; 65534 can neither remove nor
#     replace root's claim on the port; claims go when the leases do.
# Needs root (to act as user 65534 through setpriv).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root to act as two users"
command -v setpriv >/dev/null 2>&1 || skip_all "setpriv is not installed"
# User 65534 must reach the folders below.
chmod 755 "$T"
AS_NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"

# st CMD...: prints CMD's exit status (its output is kept in $T/out and
# $T/err).
st() {
    if "$@" >"$T/out" 2>"$T/err"; then echo 0; else echo $?; fi
}

# --------------------------------------------- a pre-created mapping file
S=$T/sticky
mkdir "$S"
chmod 1777 "$S"
# shellcheck disable=SC2086,SC2016 # a command prefix; $1 is the inner sh's
$AS_NOBODY sh -c 'printf "# portshim map v1 group=mine\ntcp 8080 31337 1\n" \
    >"$1"' sh "$S/a.map"
is "$(st "$PORTSHIM" run --ports 8080 --group mine --map "$S/a.map" -- \
    touch "$T/ran")" 125 \
    "run refuses a --map that another user created first (status 125)"
check "CMD did not run" [ ! -e "$T/ran" ]
is "$(wc -l <"$T/err")" 1 "with one line"
like "$T/err" "^portshim: --map $S/a.map: .*belongs to uid 65534" \
    "which names the file and its owner"
check "the other user's file is left as it was" \
    grep -q '^tcp 8080 31337 1$' "$S/a.map"

# A folder anyone may write to, not sticky: anyone could replace it.
W=$T/open
mkdir "$W"
chmod 777 "$W"
is "$(st "$PORTSHIM" run --ports 8080 --map "$W/b.map" -- \
    touch "$T/ran")" 125 \
    "run refuses a --map in a world-writable folder without the sticky bit"
like "$T/err" "^portshim: --map $W/b.map: its folder can be written by" \
    "saying why"
check "CMD did not run" [ ! -e "$T/ran" ]

# Claimed first, the file stays the run's: user 65534 can neither replace
# nor remove it while the run lasts, and readers get the run's ports.
bg "$T/claim.log" "$PORTSHIM" run --ports 8080 --group claim \
    --map "$S/c.map" -- "$PSTCP" listen 127.0.0.1 8080 claimed
claim=$ps_last_pid
wait_for_map "$S/c.map" 8080 20 || true
real=$(map_real "$S/c.map" tcp 8080)
# shellcheck disable=SC2086,SC2016 # a command prefix; $1 is the inner sh's
$AS_NOBODY sh -c 'printf "# portshim map v1 group=claim\ntcp 8080 31337 1\n" \
    >"$1.x" && mv -f "$1.x" "$1"' sh "$S/c.map" 2>/dev/null || true
is "$(map_real "$S/c.map" tcp 8080)" "$real" \
    "another user cannot replace a claimed mapping file (tcp 8080 -> $real)"
kill_tree "$claim"

# ------------------------------------------------- a squatted state dir
V=$((100000 + $$))
SQ=/dev/shm/portshim-$V
rm -rf "$SQ"
XDG=$T/xdg-$V
mkdir "$XDG"
chown "$V:$V" "$XDG"
chmod 700 "$XDG"
# shellcheck disable=SC2086 # $AS_NOBODY is a command prefix
$AS_NOBODY mkdir -m 700 "$SQ"
AS_VICTIM="setpriv --reuid=$V --regid=$V --clear-groups"
# The victim's own default registry: no PORTSHIM_REGISTRY.
# shellcheck disable=SC2086,SC2016 # a command prefix; $1 is the inner sh's
got=$(st env -u PORTSHIM_REGISTRY XDG_RUNTIME_DIR="$XDG" $AS_VICTIM \
    "$PORTSHIM" run --ports 8080 --group victim -- \
    sh -c '"$1" bind 127.0.0.1 8080 && "$2" port 8080' sh "$PSTCP" "$PORTSHIM")
is "$got" 0 "another user's $SQ: the victim's run still works"
real=$(sed -n 2p "$T/out")
check "its bind got a real port from the fallback registry ($real)" \
    expr "X$real" : 'X[0-9][0-9]*$'
check "the registry is in \$XDG_RUNTIME_DIR/portshim" \
    [ -f "$XDG/portshim/registry" ]
is "$(wc -l <"$T/err")" 1 "one line says so"
like "$T/err" "^portshim: warning: $SQ belongs to uid 65534, not to you \\(uid $V\\): using $XDG/portshim instead$" \
    "naming the squatter and the place used instead"
check "what the other user made is left alone" [ -d "$SQ" ]
# Without XDG_RUNTIME_DIR there is nowhere safe to go: a clear refusal.
# shellcheck disable=SC2086 # $AS_VICTIM is a command prefix
is "$(st env -u PORTSHIM_REGISTRY -u XDG_RUNTIME_DIR $AS_VICTIM \
    "$PORTSHIM" run --ports 8080 -- true)" 125 \
    "without XDG_RUNTIME_DIR the run is refused"
like "$T/err" "$SQ is owned by uid 65534, not by you" "naming the squatter"
rm -rf "$SQ"

# ------------------------------------- two users, one range of real ports
P=$(free_port 29000 29400)
R=$P-$((P + 2))
# shellcheck disable=SC2016 # $1 and $2 are the inner sh's
bg "$T/a.log" "$PORTSHIM" run --ports 8080 --range "$R" --group users-a \
    --map "$T/a.map" -- sh -c '"$1" bind 127.0.0.1 8080 >/dev/null
        while [ ! -e "$2" ]; do sleep 0.1; done' sh "$PSTCP" "$T/a.stop"
a_run=$ps_last_pid
wait_for_map "$T/a.map" 8080 20 || true
a_real=$(map_real "$T/a.map" tcp 8080)
# A's server has exited: nothing is bound to a_real, its lease is kept.
check "root's group leases tcp 8080 -> $a_real, and nothing listens there" \
    eval "[ -n '$a_real' ] && ! listening '$a_real'"
mkdir "$T/b"
chown 65534:65534 "$T/b"
chmod 700 "$T/b"
# shellcheck disable=SC2086,SC2016 # a command prefix; $1 is the inner sh's
b_real=$(env PORTSHIM_REGISTRY="$T/b/registry" $AS_NOBODY \
    "$PORTSHIM" run --ports 8080 --range "$R" --group users-b \
    --map "$T/b/b.map" -- \
    sh -c '"$1" bind 127.0.0.1 8080 >/dev/null && "$2" port 8080' \
    sh "$PSTCP" "$PORTSHIM" 2>"$T/b.err" || true)
if [ -n "$b_real" ] && [ "$b_real" != "$a_real" ]; then
    ok "user 65534's group gets another real port ($b_real, not $a_real)"
else
    not_ok "user 65534's group gets another real port"
    diag "root's: '$a_real', 65534's: '$b_real'"
    diag_file "$T/b.err"
fi
CLAIM=/dev/shm/portshim-claim-$a_real
# shellcheck disable=SC2086 # $AS_NOBODY is a command prefix
$AS_NOBODY rm -f "$CLAIM" 2>/dev/null || true
# shellcheck disable=SC2086,SC2016 # a command prefix; $1 is the inner sh's
$AS_NOBODY sh -c 'echo x >"$1.x" && mv -f "$1.x" "$1"' sh "$CLAIM" \
    2>/dev/null || true
check "user 65534 can neither remove nor replace root's claim" \
    eval "[ \"\$(stat -c %u '$CLAIM')\" = 0 ] &&
        readlink '$CLAIM' | grep -q '^portshim claim v1 0 '"
rm -f "$CLAIM.x"
check "65534's claim went with its group" \
    [ ! -e "/dev/shm/portshim-claim-$b_real" ]
touch "$T/a.stop"
wait_exit "$a_run" 20 || kill_tree "$a_run"
check "root's claim went with its group" [ ! -e "$CLAIM" ]
# Whatever 65534 managed to leave there (only without claims) goes too.
if [ "$(stat -c %u "$CLAIM" 2>/dev/null)" = 65534 ]; then
    rm -f "$CLAIM"
fi

done_testing
