#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_basics.sh - the portshim program's contract: help and version, usage
# errors (exit 2, one line naming the bad value), `run` passing CMD's exit
# status through and setting CMD's environment, releasing the group at
# the end, and `port`, `ls` and `gc` on a registry of the test's own.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# st CMD...: prints CMD's exit status (stdout to $T/out, stderr to $T/err).
st() {
    if "$@" >"$T/out" 2>"$T/err"; then
        echo 0
    else
        echo $?
    fi
}

# usage_error DESC WANT_TEXT CMD...: CMD exits 2, and its stderr is one
# "portshim: ..." line containing WANT_TEXT, then the "Try" line of the
# command ("Try 'portshim port --help'.", or "Try 'portshim --help'." when
# no known command was given).
usage_error() {
    ue_desc=$1
    ue_want=$2
    shift 2
    case ${2:-} in
    run | supervise | port | wait | ls | who | gc | doctor | pick | release | \
        portserver | env)
        ue_try="Try 'portshim $2 --help'."
        ;;
    *) ue_try="Try 'portshim --help'." ;;
    esac
    ue_st=$(st "$@")
    ue_first=$(sed -n 1p "$T/err")
    ue_second=$(sed -n 2p "$T/err")
    ue_lines=$(wc -l <"$T/err" | tr -d ' ')
    case $ue_first in
    "portshim: "*"$ue_want"*) ue_named=yes ;;
    *) ue_named=no ;;
    esac
    if [ "$ue_st" = 2 ] && [ "$ue_named" = yes ] && [ "$ue_lines" = 2 ] &&
        [ "$ue_second" = "$ue_try" ] && [ ! -s "$T/out" ]
    then
        ok "$ue_desc"
    else
        not_ok "$ue_desc"
        diag "exit status $ue_st, want 2; stderr:"
        diag_file "$T/err"
    fi
}

# --------------------------------------------------------- help, version
is "$(st "$PORTSHIM" --help)" 0 "--help exits 0"
check "--help prints the usage to stdout" grep -q '^Usage: portshim' "$T/out"
is "$(wc -c <"$T/err" | tr -d ' ')" 0 "--help writes nothing to stderr"
check "--help says where to report bugs" \
    grep -q "^Report bugs to .*'portshim doctor'" "$T/out"
check "--help names the licence" grep -q 'MIT licence' "$T/out"
is "$(st "$PORTSHIM" help)" 0 "help exits 0"
check "help prints the usage" grep -q '^Usage: portshim' "$T/out"
is "$(st "$PORTSHIM" help gc)" 0 "help gc exits 0"
check "help gc prints the usage of gc" grep -q '^Usage: portshim gc' "$T/out"
for cmd in run port ls gc; do
    is "$(st "$PORTSHIM" "$cmd" --help)" 0 "$cmd --help exits 0"
    check "$cmd --help prints its usage" \
        grep -q "^Usage: portshim $cmd" "$T/out"
done
# The top-level help names every option of every command.
"$PORTSHIM" --help >"$T/main-help"
for cmd in run supervise port wait env ls who gc doctor pick release \
    portserver; do
    "$PORTSHIM" "$cmd" --help | grep -E '^ +(-[a-zA-Z], )?--[a-z]' |
        grep -oE -- '--[a-z][a-z-]*' | sort -u >"$T/opts"
    missing=""
    while read -r o; do
        [ "$o" = --help ] && continue
        awk -v c="$cmd" -v o="$o" '
            /^  [a-z]/ { cur = $1 }
            cur == c && index($0, o) { found = 1 }
            END { exit !found }' "$T/main-help" || missing="$missing $o"
    done <"$T/opts"
    is "$missing" "" "portshim --help names the options of $cmd"
done
"$PORTSHIM" ls --help >"$T/ls-help"
check "ls --help says what PROTO pick and GROUP - are" \
    sh -c "grep -q 'pick for a port leased by' '$T/ls-help' &&
        grep -q 'GROUP and VIRTUAL are -' '$T/ls-help'"
is "$(st "$PORTSHIM" --version)" 0 "--version exits 0"
check "--version prints 'portshim VERSION'" \
    grep -Eq '^portshim [0-9]+\.[0-9]+' "$T/out"
check "--version names the MIT licence" grep -q '^License MIT' "$T/out"
check "--version has the copyright line" grep -q '^Copyright (C)' "$T/out"
check "--version says where to report bugs" \
    grep -q "^Report bugs to .*'portshim doctor'" "$T/out"

# --------------------------------------------------------- usage errors
usage_error "no command" "missing command" "$PORTSHIM"
usage_error "an unknown command" "'frobnicate'" "$PORTSHIM" frobnicate
usage_error "an unknown option" "'--frobnicate'" "$PORTSHIM" --frobnicate
usage_error "an unknown run option" "'--frobnicate'" \
    "$PORTSHIM" run --frobnicate true
usage_error "run without CMD" "missing CMD" "$PORTSHIM" run
usage_error "an option without its argument" "--ports" \
    "$PORTSHIM" run --ports
usage_error "invalid --ports" "'70000'" "$PORTSHIM" run --ports 70000 true
usage_error "invalid --ports item" "'tcp:x'" \
    "$PORTSHIM" run --ports 80,tcp:x true
usage_error "invalid --range (reversed)" "'9000-8000'" \
    "$PORTSHIM" run --range 9000-8000 true
usage_error "invalid --range (not numbers)" "'low-high'" \
    "$PORTSHIM" run --range low-high true
usage_error "invalid --group" "'bad group'" \
    "$PORTSHIM" run --group 'bad group' true
long=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
usage_error "a 64-character --group" "'$long'" \
    "$PORTSHIM" run --group "$long" true
usage_error "port without VPORT" "missing VPORT" "$PORTSHIM" port -g g1
usage_error "port with an invalid VPORT" "'0'" "$PORTSHIM" port -g g1 0
usage_error "port without a group" "PORTSHIM_GROUP" "$PORTSHIM" port 8080
usage_error "ls with an argument" "'extra'" "$PORTSHIM" ls extra
usage_error "gc with an argument" "'extra'" "$PORTSHIM" gc extra

# Each command's usage error points at its own help.
for cmd in run supervise port wait ls who gc doctor pick release portserver
do
    usage_error "$cmd: an unknown option" "'--frobnicate'" \
        "$PORTSHIM" "$cmd" --frobnicate
done

# Options after operands (GNU permutation), for every command that takes
# operands and options; run, supervise and doctor stop at CMD, whose
# options are its own.
is "$(st "$PORTSHIM" port 8080 --group perm)" 1 \
    "port 8080 --group G: the option is taken"
check "and the message names the group" grep -q 'group perm' "$T/err"
is "$(st "$PORTSHIM" wait 8080 --group perm --timeout 0)" 1 \
    "wait 8080 --group G --timeout 0: the options are taken"
is "$(st "$PORTSHIM" release 20000 --force)" 1 \
    "release 20000 --force: the option is taken"
check "and the message is about the port" grep -q '20000' "$T/err"
st "$PORTSHIM" who 1 --json >/dev/null || true
check "who 1 --json: the option is taken" grep -q '^{' "$T/out"
usage_error "port VPORT with an unknown option after it" "'--frobnicate'" \
    "$PORTSHIM" port 8080 --frobnicate
usage_error "release PORT with an unknown option after it" "'--frobnicate'" \
    "$PORTSHIM" release 20000 --frobnicate

got=$(st env PORTSHIM_RANGE=30000-20000 "$PORTSHIM" run true)
is "$got" 2 "run refuses an invalid PORTSHIM_RANGE in its environment"
check "the message names PORTSHIM_RANGE" \
    grep -q '^portshim: PORTSHIM_RANGE' "$T/err"
got=$(st env PORTSHIM_PORTS=70000 "$PORTSHIM" run --ports 8080 true)
is "$got" 0 "--ports replaces an invalid inherited PORTSHIM_PORTS"

# --------------------------------------------------------- range warnings
is "$(st "$PORTSHIM" run --range 1-100 true)" 0 "run --range 1-100 runs CMD"
check "and warns that the range holds privileged ports" \
    grep -q "^portshim: warning: the range 1-100 holds privileged ports" \
    "$T/err"
read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range
is "$(st "$PORTSHIM" run --range "$elo-$((elo + 10))" true)" 0 \
    "run with a range inside ip_local_port_range runs CMD"
check "and warns that it overlaps the ephemeral ports" \
    grep -q "^portshim: warning: the range $elo-$((elo + 10)) overlaps the ephemeral ports $elo-$ehi" \
    "$T/err"
if [ "$elo" -gt 1124 ]; then
    is "$(st "$PORTSHIM" run --range 1024-1124 true)" 0 \
        "run --range 1024-1124 runs CMD"
    is "$(wc -c <"$T/err" | tr -d ' ')" 0 "without a warning"
else
    skip "ip_local_port_range starts below 1125" "a range without warning"
    skip "ip_local_port_range starts below 1125" "a range without warning"
fi

# --------------------------------------------------------- exit status
is "$(st "$PORTSHIM" run -- sh -c 'exit 3')" 3 "run passes exit status 3"
is "$(st "$PORTSHIM" run true)" 0 "run passes exit status 0"
is "$(st "$PORTSHIM" run -- sh -c 'kill -TERM $$')" 143 \
    "run exits 128+15 when CMD dies of SIGTERM"
is "$(st "$PORTSHIM" run -- sh -c 'kill -KILL $$')" 137 \
    "run exits 128+9 when CMD dies of SIGKILL"
is "$(wc -c <"$T/err" | tr -d ' ')" 0 "and prints nothing about it"
# A caller that ignores SIGCHLD (kept across exec): the kernel would
# reap CMD unseen. run still learns how CMD ended, with a keeper or not.
# shellcheck disable=SC2016 # perl's own variables
is "$(st timeout 60 perl -e '$SIG{CHLD} = "IGNORE"; exec @ARGV or die' \
    "$PORTSHIM" run -- sh -c 'exit 3')" 3 \
    "run started with SIGCHLD ignored returns CMD's status"
# shellcheck disable=SC2016 # perl's own variables
is "$(st timeout 60 perl -e '$SIG{CHLD} = "IGNORE"; exec @ARGV or die' \
    "$PORTSHIM" run --no-keeper -- sh -c 'exit 4')" 4 \
    "... and so does run --no-keeper"
is "$(st "$PORTSHIM" run "$T/no-such-program")" 127 \
    "run of a missing command exits 127"
is "$(cat "$T/err")" \
    "portshim: $T/no-such-program: No such file or directory" \
    "with one line naming the command"
is "$(st "$PORTSHIM" run no-such-program-on-path-$$)" 127 \
    "run of a command not on PATH exits 127"
: >"$T/not-executable"
is "$(st "$PORTSHIM" run "$T/not-executable")" 126 \
    "run of a file that cannot be executed exits 126"
# An executable text file without "#!": run starts it the way execvp
# does (with /bin/sh), as it always has.
# shellcheck disable=SC2016 # the script's own $0 and $1
printf 'echo "$0 $1"; exit 7\n' >"$T/no-shebang"
chmod 755 "$T/no-shebang"
is "$(st "$PORTSHIM" run -- "$T/no-shebang" arg)" 7 \
    "run of an executable script without #! runs it with sh"
is "$(cat "$T/out")" "$T/no-shebang arg" "with its arguments"

# run forwards a signal that a process sends it.
"$PORTSHIM" run -- sh -c \
    "trap 'exit 7' USR1; : >'$T/ready'; while :; do sleep 0.1; done" \
    >/dev/null 2>&1 &
runpid=$!
n=100
while [ ! -e "$T/ready" ] && [ "$n" -gt 0 ]; do
    sleep 0.1
    n=$((n - 1))
done
kill -USR1 "$runpid"
if wait "$runpid"; then got=0; else got=$?; fi
is "$got" 7 "run forwards SIGUSR1 to CMD and passes its status"

# --------------------------------------------------------- environment
# An entry that is already in LD_PRELOAD: the C library, which every
# program has loaded anyway.
libc=$(awk '$6 ~ /\/libc(\.so|-[0-9.]+\.so)/ { print $6; exit }' \
    /proc/self/maps)
lib=$(readlink -f "$PORTSHIM_LIB")
(
    cd "$T"
    # shellcheck disable=SC2016 # CMD's own shell expands the variables
    LD_PRELOAD=$libc PORTSHIM_LIBRARY=$PORTSHIM_LIB "$PORTSHIM" run \
        --group envtest --map rel.map --range 21000-21999 -- sh -c '
        printf "%s\n" "$PORTSHIM_GROUP" "$PORTSHIM_MAP_FILE" \
            "$LD_PRELOAD" "$PORTSHIM_PORTS" "$PORTSHIM_RANGE" \
            "$PORTSHIM_GROUP_OWNER"' >"$T/env.out" 2>"$T/env.err"
) || true
diag_file "$T/env.err"
is "$(sed -n 1p "$T/env.out")" envtest "run sets PORTSHIM_GROUP to --group"
is "$(sed -n 2p "$T/env.out")" "$T/rel.map" \
    "run sets PORTSHIM_MAP_FILE to --map, made absolute"
got=$(sed -n 3p "$T/env.out")
if [ -z "$libc" ]; then
    skip "the C library's path is unknown" "LD_PRELOAD keeps its entry"
else
    case $got in
    "$libc $lib" | *":$libc $lib")
        ok "LD_PRELOAD keeps its entry and ends with the shim" ;;
    *)
        not_ok "LD_PRELOAD keeps its entry and ends with the shim"
        diag "got '$got', want '$libc $lib'" ;;
    esac
fi
is "$(sed -n 4p "$T/env.out")" all "PORTSHIM_PORTS defaults to all"
is "$(sed -n 5p "$T/env.out")" 21000-21999 "run sets PORTSHIM_RANGE"
check "PORTSHIM_GROUP_OWNER is PID:START" \
    grep -Eq '^[0-9]+:[0-9]+$' "$T/env.out"

# shellcheck disable=SC2016 # CMD's own shell expands the variables
"$PORTSHIM" run -- sh -c \
    'printf "%s\n" "$PORTSHIM_GROUP" "$PORTSHIM_MAP_FILE" "$LD_PRELOAD"' \
    >"$T/env2.out" 2>"$T/env2.err" || true
group=$(sed -n 1p "$T/env2.out")
check "without --group the group is a fresh ps-PID-HEX name" \
    expr "X$group" : 'Xps-[0-9][0-9]*-[0-9a-f]\{8\}$'
desc="without --map the mapping file is <state dir>/<group>.map"
case $(sed -n 2p "$T/env2.out") in
*/"$group.map") ok "$desc" ;;
*) not_ok "$desc"; diag_file "$T/env2.out" ;;
esac
desc="the build tree's shim is found and ends LD_PRELOAD"
case $(sed -n 3p "$T/env2.out") in
*/src/shim/.libs/libportshim.so) ok "$desc" ;;
*) not_ok "$desc"; diag_file "$T/env2.out" ;;
esac

# --------------------------------------------------------- port, ls, gc
is "$(st "$PORTSHIM" port --group nobody 8080)" 1 \
    "port on a group without leases exits 1"
is "$(cat "$T/err")" "portshim: no lease for tcp port 8080 in group nobody" \
    "and says so"
is "$(st env PORTSHIM_GROUP=nobody "$PORTSHIM" port --udp 5353)" 1 \
    "port --udp with the group from PORTSHIM_GROUP exits 1"
is "$(cat "$T/err")" "portshim: no lease for udp port 5353 in group nobody" \
    "and names udp"
is "$(st "$PORTSHIM" ls --group nobody)" 0 "ls of an empty group exits 0"
is "$(cat "$T/out")" \
    "GROUP  PROTO  VIRTUAL  REAL  PID  ALIVE  AGE  COMMAND" \
    "and prints only the header"
is "$(st "$PORTSHIM" ls --json --group nobody)" 0 "ls --json exits 0"
is "$(cat "$T/out")" '{"leases":[]}' "and prints an empty list"
is "$(st "$PORTSHIM" gc --dry-run)" 0 "gc --dry-run exits 0"
is "$(cat "$T/out")" "would free 0 leases" "and frees nothing"
is "$(st "$PORTSHIM" gc --reset)" 0 "gc --reset of a healthy registry exits 0"
check "and leaves it alone" grep -q 'nothing to reset' "$T/out"

# --------------------------------------------------------- a lease's life
# A server in a group: port and ls see its lease while it runs; after
# run ends, the lease and the mapping file are gone.
"$PORTSHIM" run --ports 8080 --group life --map "$T/life.map" -- "$PY" -c '
import os, socket, subprocess, sys
s = socket.socket()
s.bind(("127.0.0.1", 8080))
s.listen()
port = subprocess.run([sys.argv[1], "port", "8080"], capture_output=True,
                      text=True).stdout.strip()
real = s.getsockname()[1]
print(port)
print(os.path.exists(os.environ["PORTSHIM_MAP_FILE"]))
subprocess.run([sys.argv[1], "ls", "--group", "life"])
' "$PORTSHIM" >"$T/life.out" 2>"$T/life.err" || true
real=$(sed -n 1p "$T/life.out")
check "port prints the real port of a lease inside the run" \
    expr "X$real" : 'X[0-9][0-9]*$'
is "$(sed -n 2p "$T/life.out")" True "the mapping file exists during the run"
check "ls shows the lease" grep -Eq "^life +tcp +8080 +$real " "$T/life.out"
check "the mapping file is gone after the run" test ! -e "$T/life.map"
is "$(st "$PORTSHIM" port --group life 8080)" 1 \
    "the lease is released after the run"
diag_file "$T/life.err"

# A second run joining the group (a client, say) must not take the first
# run's leases or mapping file away when it ends.
bg "$T/share.log" "$PORTSHIM" run --ports 8080 --group share \
    --map "$T/share.map" -- "$PY" -c '
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 8080))
s.listen()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
' "$T/share.stop"
sharepid=$ps_last_pid
if wait_for_map "$T/share.map" 8080 20; then
    real=$(map_real "$T/share.map" tcp 8080)
    is "$(st "$PORTSHIM" run --group share --map "$T/share.map" true)" 0 \
        "a second run joins the group"
    is "$(map_real "$T/share.map" tcp 8080)" "$real" \
        "the first run's mapping file is intact after it ends"
    is "$("$PORTSHIM" port --group share 8080 2>&1)" "$real" \
        "and so is its lease"
else
    not_ok "the server in group share binds within 20 s"
    diag_file "$T/share.log"
fi
: >"$T/share.stop"
if wait "$sharepid"; then got=0; else got=$?; fi
is "$got" 0 "the first run ends with its server"
check "then its mapping file is gone" test ! -e "$T/share.map"
is "$(st "$PORTSHIM" port --group share 8080)" 1 "and its lease too"

# --------------------------------------------------------- --no-keeper
# CMD starts a server in the background and returns once it listens. By
# default the group lives on with the server; with --no-keeper it ends
# with CMD: lease and mapping file gone, the server running without them.
nk_run() {
    nk_group=$1
    shift
    # shellcheck disable=SC2016 # CMD's own shell expands them
    "$PORTSHIM" run "$@" --group "$nk_group" --ports 8090 \
        --map "$T/$nk_group.map" --range 21000-21999 -- sh -c '
        "$0" listen 127.0.0.1 8090 nk >"$1" 2>&1 </dev/null &
        echo $! >"$1.pid"
        n=200
        until grep -q "^listening" "$1"; do
            n=$((n - 1)); [ "$n" -gt 0 ] || exit 1; sleep 0.1
        done' "$PSTCP" "$T/$nk_group.log" >/dev/null 2>&1
}
nk_run nk-keep
is "$(st "$PORTSHIM" port --group nk-keep 8090)" 0 \
    "a server that outlives CMD keeps its group's lease"
check "and its mapping file" test -s "$T/nk-keep.map"
kill "$(cat "$T/nk-keep.log.pid")"
nk_run nk-none --no-keeper
is "$?" 0 "run --no-keeper returns CMD's status"
nk_pid=$(cat "$T/nk-none.log.pid")
check "the server still runs" alive "$nk_pid"
is "$(st "$PORTSHIM" port --group nk-none 8090)" 1 \
    "with --no-keeper the group's lease ended with CMD"
check "and its mapping file is gone" test ! -e "$T/nk-none.map"
kill "$nk_pid"

# --------------------------------------------------------- run killed
# A harness kills `run` alone (SIGKILL, nothing passed on) while CMD and
# its server run: the group lives on with them, and when its last process
# ends the keeper releases it, with nobody left to tell.
# shellcheck disable=SC2016 # CMD's own shell expands them
"$PORTSHIM" run --group rk --ports 8090 --map "$T/rk.map" \
    --range 21000-21999 -- sh -c '
    "$0" listen 127.0.0.1 8090 rk >"$1" 2>&1 </dev/null &
    echo $! >"$1.pid"
    wait' "$PSTCP" "$T/rk.log" >/dev/null 2>&1 &
rk_run=$!
n=200
until grep -q "^listening" "$T/rk.log" 2>/dev/null || [ "$n" -eq 0 ]; do
    n=$((n - 1))
    sleep 0.1
done
rk_pid=$(cat "$T/rk.log.pid" 2>/dev/null || true)
is "$(st "$PORTSHIM" port --group rk 8090)" 0 "run killed: its server listens"
kill -KILL "$rk_run"
wait "$rk_run" || true
check "after run's SIGKILL the server still runs" alive "$rk_pid"
is "$(st "$PORTSHIM" port --group rk 8090)" 0 "and the group keeps its lease"
check "and a keeper shows run's arguments" \
    pgrep -f -- "run --group rk --ports 8090 --map $T/rk.map "
kill "$rk_pid"
n=300
while [ "$n" -gt 0 ] && [ -n "$(pgrep -f -- "run --group rk --ports 8090")" ]; do
    n=$((n - 1))
    sleep 0.1
done
is "$(st "$PORTSHIM" port --group rk 8090)" 1 \
    "once the server ends, the keeper released the lease"
check "and removed the mapping file" test ! -e "$T/rk.map"

# --------------------------------------------------------- refused registry
mkdir -m 700 "$T/bad"
head -c 5000 /dev/zero >"$T/bad/registry"
chmod 600 "$T/bad/registry"
is "$(st env PORTSHIM_REGISTRY="$T/bad/registry" "$PORTSHIM" ls)" 1 \
    "ls of a refused registry exits 1"
check "with a message" grep -q '^portshim: ' "$T/err"
is "$(st env PORTSHIM_REGISTRY="$T/bad/registry" "$PORTSHIM" run true)" \
    125 "run refuses to start with a refused registry (125)"
is "$(st env PORTSHIM_REGISTRY="$T/bad/registry" PORTSHIM_ON_ERROR=pass \
    "$PORTSHIM" run -- sh -c 'exit 4')" 4 \
    "with PORTSHIM_ON_ERROR=pass run starts CMD anyway"
is "$(st env PORTSHIM_REGISTRY="$T/bad/registry" "$PORTSHIM" gc --reset)" \
    0 "gc --reset of a refused registry exits 0"
check "it moved the bad file aside" \
    sh -c "ls '$T/bad' | grep -q '^registry\\.broken\\.[0-9]'"
is "$(st env PORTSHIM_REGISTRY="$T/bad/registry" "$PORTSHIM" ls)" 0 \
    "and the fresh registry opens"

done_testing
