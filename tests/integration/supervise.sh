#!/bin/sh
# SPDX-License-Identifier: MIT
# supervise.sh - `portshim run --supervise`: programs that no preload can
# see (a statically linked C server and client, a real Go program, raw
# system calls) run as 4 concurrent copies on one port, each reaching its
# own copy; a supervised Go server and a preloaded Python client share a
# group; UDP sends, non-blocking connects, a blocking connect that must
# not stall the others, io_uring, an ordinary file workload and exit
# statuses; and the clear failure when the kernel lacks what is needed.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

VPORT=8080
N=4
CC=${CC:-cc}

if ! "$PORTSHIM" run --supervise -- true 2>"$T/probe.err"; then
    skip_all "--supervise cannot run here: $(head -n 1 "$T/probe.err")"
fi

PSSV=$T/pssv
if ! "$CC" -static -O2 -o "$PSSV" "$PS_SRCDIR/tests/helpers/pssv.c" \
    2>"$T/cc.err"; then
    skip_all "cannot link a static program ($CC -static): \
$(head -n 1 "$T/cc.err")"
fi

# copy.sh NAME READY CLIENT SERVER [ARG]...: what one copy of a test suite
# does: start SERVER, wait until its output shows READY, run the shell
# command CLIENT (its output and status kept), then keep the server up
# until the test has looked at the mapping file ($T/stop).
cat >"$T/copy.sh" <<'EOF'
#!/bin/sh
d=$COPY_DIR
name=$1 ready=$2 client=$3
shift 3
"$@" >"$d/$name.server" 2>&1 &
server=$!
i=0
until grep -q "$ready" "$d/$name.server" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && break
    sleep 0.1
done
eval "$client" >"$d/$name.client" 2>&1
echo $? >"$d/$name.rc"
while [ ! -e "$d/stop" ]; do
    sleep 0.1
done
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
exit 0
EOF
COPY_DIR=$T
export COPY_DIR

# reap PID, for the scripts below: waits (10 s at most) for a server that
# answers one connection to exit, then kills it, so that a client that
# went elsewhere never leaves the test hanging.
cat >"$T/reap.sh" <<'EOF'
reap() {
    r_i=0
    while kill -0 "$1" 2>/dev/null && [ "$r_i" -lt 100 ]; do
        sleep 0.1
        r_i=$((r_i + 1))
    done
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
EOF

# start_copy NAME READY CLIENT SERVER [ARG]...: one copy under its own
# `portshim run --supervise`, in group NAME, mapping file $T/NAME.map.
start_copy() {
    sc_name=$1
    shift
    bg "$T/$sc_name.log" "$PORTSHIM" run --supervise --ports "$VPORT" \
        --group "$sc_name" --map "$T/$sc_name.map" -- \
        sh "$T/copy.sh" "$sc_name" "$@"
    eval "run_$sc_name=\$ps_last_pid"
}

# wait_clients NAME...: waits (bounded) until each copy's clients are done.
wait_clients() {
    for wc_name in "$@"; do
        wc_n=600
        while [ ! -s "$T/$wc_name.rc" ] && [ "$wc_n" -gt 0 ]; do
            sleep 0.1
            wc_n=$((wc_n - 1))
        done
    done
}

# check_copies WHAT COMM WANT_SERVER NAME...: the checks of a set of
# concurrent copies: each mapping file shows the virtual port on its own
# real port made by the server process (COMM), each server saw its
# virtual port, each client reached its own copy. WANT_SERVER is the line
# the server prints; a client's expected output is in $T/NAME.want.
check_copies() {
    cc_what=$1 cc_comm=$2 cc_server=$3
    shift 3
    cc_reals=""
    for cc_name in "$@"; do
        cc_real=$(map_real "$T/$cc_name.map" tcp "$VPORT")
        cc_pid=$(awk -v v="$VPORT" '$1 == "tcp" && $2 == v { print $4 }' \
            "$T/$cc_name.map" 2>/dev/null)
        cc_reals="$cc_reals $cc_real"
        cc_seen=$(cat "/proc/$cc_pid/comm" 2>/dev/null || true)
        if [ -n "$cc_real" ] && [ "$cc_real" -ge 20000 ] &&
            [ "$cc_real" -le 32767 ] && [ "$cc_seen" = "$cc_comm" ] &&
            listening "$cc_real"; then
            ok "$cc_what $cc_name: the mapping file shows tcp $VPORT ->" \
                "$cc_real, made by the server (pid $cc_pid, $cc_comm)," \
                "which listens there"
        else
            not_ok "$cc_what $cc_name: mapping file right"
            diag "real='$cc_real' pid='$cc_pid' comm='$cc_seen'"
            diag_file "$T/$cc_name.map"
            diag_file "$T/$cc_name.log"
            diag_file "$T/$cc_name.server"
        fi
        is "$(cat "$T/$cc_name.server" 2>/dev/null)" "$cc_server" \
            "$cc_what $cc_name: the server sees its virtual port"
        is "$(cat "$T/$cc_name.rc" 2>/dev/null):$(cat "$T/$cc_name.client" \
            2>/dev/null)" "0:$(cat "$T/$cc_name.want")" \
            "$cc_what $cc_name: its clients reach their own copy"
    done
    # shellcheck disable=SC2086 # word splitting of the port list is wanted
    cc_distinct=$(printf '%s\n' $cc_reals | sort -u | grep -c . || true)
    is "$cc_distinct" "$#" \
        "$cc_what: $# copies got $# distinct real ports:$cc_reals"
}

# stop_copies NAME...: ends the copies; each run must exit with status 0
# and remove its mapping file.
stop_copies() {
    touch "$T/stop"
    sp_bad=""
    for sp_name in "$@"; do
        eval "sp_pid=\$run_$sp_name"
        # shellcheck disable=SC2154 # set by start_copy through eval
        if wait "$sp_pid"; then
            [ -e "$T/$sp_name.map" ] && sp_bad="$sp_bad $sp_name(map left)"
        else
            sp_bad="$sp_bad $sp_name(status $?)"
        fi
    done
    rm -f "$T/stop"
    is "$sp_bad" "" "$* end with status 0 and remove their mapping files"
}

# ------------------------------------------ a static C server and client
diag "$N copies of a static server on port $VPORT, each under --supervise"
names=""
i=1
while [ "$i" -le "$N" ]; do
    g=s$i
    names="$names $g"
    printf '%s\npeer=%s\n%s\npeer=%s' "$g" "$VPORT" "$g" "$VPORT" \
        >"$T/$g.want"
    # A blocking connect, then a non-blocking one (EINPROGRESS, poll)
    # with raw system calls; both print the peer's port (getpeername).
    start_copy "$g" "port=" \
        "\"$PSSV\" get $VPORT && \"$PSSV\" get -r -n $VPORT" \
        "$PSSV" serve -r "$VPORT" "$g"
    i=$((i + 1))
done
# shellcheck disable=SC2086 # word splitting of the names is wanted
wait_clients $names
# shellcheck disable=SC2086
check_copies static pssv "port=$VPORT" $names
# shellcheck disable=SC2086
stop_copies $names

# ------------------------------------------------ a real Go program
GO=$(command -v go || true)
GOSV=$T/gosv
go_ok=false
if [ -z "$GO" ]; then
    go_why="Debian's golang-go is not installed (no 'go' on PATH)"
else
    mkdir -p "$T/gosrc"
    cat >"$T/gosrc/main.go" <<'EOF'
// A Go server on a hard-coded port and its HTTP client: Go's net package
// makes its own system calls, with or without cgo.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "serve" {
		id := os.Args[2]
		l, err := net.Listen("tcp", ":8080")
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(1)
		}
		fmt.Printf("listening on %s\n", l.Addr())
		http.Serve(l, http.HandlerFunc(
			func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s\n", id)
			}))
		return
	}
	resp, err := http.Get("http://127.0.0.1:8080/")
	if err != nil {
		fmt.Fprintln(os.Stderr, "get:", err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Print(string(b))
}
EOF
    printf 'module portshimtest\n\ngo 1.18\n' >"$T/gosrc/go.mod"
    # Offline, in the test's own folders: no network, no module cache.
    if (cd "$T/gosrc" &&
        env GOPATH="$T/gopath" GOCACHE="$T/gocache" GOFLAGS=-buildvcs=false \
            GOPROXY=off GOTOOLCHAIN=local HOME="$T" \
            "$GO" build -o "$GOSV" .) >"$T/gobuild.log" 2>&1; then
        go_ok=true
    else
        go_why="go build failed: $(head -n 1 "$T/gobuild.log")"
    fi
fi

if $go_ok; then
    diag "$N copies of a Go net.Listen(\":$VPORT\") server, each with its" \
        "Go HTTP client"
    names=""
    i=1
    while [ "$i" -le "$N" ]; do
        g=go$i
        names="$names $g"
        printf '%s' "$g" >"$T/$g.want"
        start_copy "$g" "listening" "\"$GOSV\" get" "$GOSV" serve "$g"
        i=$((i + 1))
    done
    # shellcheck disable=SC2086
    wait_clients $names
    # shellcheck disable=SC2086
    check_copies go gosv "listening on [::]:$VPORT" $names
    # shellcheck disable=SC2086
    stop_copies $names

    # ---------------------------------------- mixed: supervised Go server,
    # preloaded Python client, one group
    printf '%s\n' "$HTTP_GET" >"$T/get.py"
    printf 'mixed' >"$T/mixed.want"
    PORTSHIM_LOG=info
    export PORTSHIM_LOG
    start_copy mixed "listening" \
        "\"$PY\" \"$T/get.py\" http://127.0.0.1:$VPORT/" "$GOSV" serve mixed
    unset PORTSHIM_LOG
    wait_clients mixed
    real=$(map_real "$T/mixed.map" tcp "$VPORT")
    is "$(cat "$T/mixed.rc"):$(grep -v '^portshim\[' "$T/mixed.client")" \
        "0:mixed" \
        "mixed: the preloaded Python client reaches its group's Go server"
    # The supervisor logs the Go server's bind; the preload in Python logs
    # the client's connect (into the client's output): two front ends, one
    # group, one real port.
    if [ -n "$real" ] &&
        grep -q "bind tcp \[::\]:$VPORT -> $real group=mixed" \
            "$T/mixed.log" &&
        grep -q "connect tcp 127.0.0.1:$VPORT -> $real group=mixed" \
            "$T/mixed.client"; then
        ok "mixed: the supervisor bound the Go server to $real, the" \
            "Python client's preload sent its connect there"
    else
        not_ok "mixed: both front ends used real port '$real'"
        diag_file "$T/mixed.log"
        diag_file "$T/mixed.client"
    fi
    stop_copies mixed
else
    skip "$go_why" "go: $N concurrent copies of a Go server"
    skip "$go_why" "mixed: supervised Go server, preloaded Python client"
fi

# ------------------------------------------ raw system calls, dynamic,
# PORTSHIM_PORTS=all: the preload's syscall() and the supervisor together
PSSVD=$T/pssv-dyn
if "$CC" -O2 -o "$PSSVD" "$PS_SRCDIR/tests/helpers/pssv.c" 2>"$T/cc2.err"
then
    printf 'raw\npeer=%s\nraw\npeer=%s' "$VPORT" "$VPORT" >"$T/raw.want"
    bg "$T/raw.log" "$PORTSHIM" run --supervise --ports all --group raw \
        --map "$T/raw.map" -- sh "$T/copy.sh" raw "port=" \
        "\"$PSSVD\" get -r $VPORT && \"$PSSVD\" get -r -n $VPORT" \
        "$PSSVD" serve -r "$VPORT" raw
    # shellcheck disable=SC2034 # read by stop_copies through eval
    run_raw=$ps_last_pid
    wait_clients raw
    check_copies "raw syscall(), --ports all:" pssv-dyn "port=$VPORT" raw
    is "$(grep -c . "$T/raw.map" 2>/dev/null)" 2 \
        "raw: one lease only (no port rewritten twice)"
    stop_copies raw
else
    skip "cannot build pssv dynamically" "raw syscall() under --supervise"
fi

# ------------------------------------------------------------------ UDP
diag "UDP: sendto, sendmsg, sendmmsg and connect+send to a tagged port"
UPORT=5353
cat >"$T/udp.sh" <<EOF
"$PSSV" udp-serve $UPORT dns-copy >"$T/udp.server" 2>&1 &
i=0
until grep -q port= "$T/udp.server"; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
for mode in sendto sendmsg sendmmsg connect; do
    printf '%s:' "\$mode"
    "$PSSV" udp-get "\$mode" $UPORT
done
kill \$!
EOF
got=$("$PORTSHIM" run --supervise --ports "udp:$UPORT" --map "$T/udp.map" \
    -- sh "$T/udp.sh" 2>"$T/udp.err" | tr '\n' ' ')
is "$got" "sendto:dns-copy sendmsg:dns-copy sendmmsg:dns-copy \
connect:dns-copy " "udp: every way of sending reaches the supervised server"
is "$(cat "$T/udp.server")" "port=$UPORT" \
    "udp: the UDP server sees its virtual port"

# --------------------------- a TCP send's destination without fast open
# The kernel ignores the address of a send on a connected TCP socket
# unless MSG_FASTOPEN is given. The shim leaves such a send alone; so
# must the supervisor: naming a tagged port that has no lease (refused
# with ECONNREFUSED, were it a connect) must not fail the send.
TPORT=7070
TOTHER=7071

# one_shot FILE BIN ID CLIENT: writes the script FILE, which starts
# "BIN serve $TPORT ID 1" (one connection), waits for its port= line, runs
# the shell command CLIENT and stops the server, so that a client that
# never reached it fails its check instead of hanging.
one_shot() {
    os_file=$1
    cat >"$os_file" <<EOF
"$2" serve $TPORT $3 1 >"$os_file.server" 2>&1 &
i=0
until grep -q port= "$os_file.server"; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
$4
kill \$! 2>/dev/null
wait
EOF
}

tcpsend() {
    ts_bin=$1
    ts_name=$2
    shift 2
    one_shot "$T/$ts_name.sh" "$ts_bin" tcp-copy \
        "\"$ts_bin\" tcp-sendto $TPORT $TOTHER"
    "$PORTSHIM" run "$@" --ports "$TPORT,$TOTHER" --map "$T/$ts_name.map" \
        -- sh "$T/$ts_name.sh" 2>"$T/$ts_name.err" | tr '\n' ' '
}
is "$(tcpsend "$PSSV" tcpsend-sv --supervise)" "sent tcp-copy " \
    "tcp: a sendto naming an unmapped tagged port, no MSG_FASTOPEN, goes out (supervised)"
# The dynamic copy of the raw-syscall section above, if it was built.
if [ -x "$PSSVD" ]; then
    is "$(tcpsend "$PSSVD" tcpsend-preload)" "sent tcp-copy " \
        "tcp: the same under the preload"
else
    skip "cannot build pssv dynamically" "tcp: the same under the preload"
fi

# ---------------------- an address of this host, in a private netns
# A connect to one of this host's own addresses (not loopback) is local,
# for the supervisor as for the shim: it reaches the group's server.
# The address is added to lo inside a network namespace of our own.
HOSTADDR=10.9.0.1
one_shot "$T/hostaddr-in.sh" "$PSSV" hostaddr \
    "\"$PSSV\" get -a $HOSTADDR $TPORT"
cat >"$T/hostaddr.sh" <<EOF
ip link set lo up && ip addr add $HOSTADDR/32 dev lo || exit 3
"$PORTSHIM" run --supervise --ports $TPORT --map "$T/hostaddr.map" \
    -- sh "$T/hostaddr-in.sh"
EOF
if command -v ip >/dev/null 2>&1 && unshare -rn true 2>/dev/null; then
    is "$(unshare -rn sh "$T/hostaddr.sh" 2>"$T/hostaddr.err" |
        tr '\n' ' ')" "hostaddr peer=$TPORT " \
        "a connect to this host's own address $HOSTADDR reaches the supervised server"
else
    skip "no unshare -rn or ip here" \
        "a connect to this host's own address reaches the supervised server"
fi

# ------------------------------------ a new lease is probed, TCP and UDP
# The range is two free ports, R0 and R0+1, and a program outside portshim
# holds R0 for UDP only. A supervised TCP server's new lease must skip R0,
# as the preload's does (front.h: a new lease starts on a number nobody
# holds, for either protocol), though its own TCP bind of R0 would work.
PR0=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    p0=$(free_port 23000 23998) || break
    if free_port $((p0 + 1)) $((p0 + 1)) >/dev/null 2>&1; then
        PR0=$p0
        break
    fi
done
if [ -n "$PR0" ]; then
    PR1=$((PR0 + 1))
    "$PSSV" udp-serve "$PR0" held >"$T/udphold.out" 2>&1 &
    udphold=$!
    i=0
    until grep -q port= "$T/udphold.out" || [ "$i" -gt 600 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    mkdir -m 700 "$T/preg"
    for arm in supervised preloaded; do
        if [ "$arm" = supervised ]; then
            bin=$PSSV
            opt=--supervise
        else
            bin=$PSSVD
            opt=""
        fi
        if [ ! -x "$bin" ]; then
            skip "no dynamic pssv" "probe: $arm"
            continue
        fi
        one_shot "$T/probe-$arm.sh" "$bin" probe \
            "cat \"$T/probe-$arm.map\"; \"$bin\" get $TPORT"
        # shellcheck disable=SC2086 # $opt: one option or none
        PORTSHIM_REGISTRY=$T/preg/registry "$PORTSHIM" run $opt \
            --ports "$TPORT" --range "$PR0-$PR1" --map "$T/probe-$arm.map" \
            -- sh "$T/probe-$arm.sh" >"$T/probe-$arm.out" 2>&1
        is "$(map_real "$T/probe-$arm.out" tcp "$TPORT")" "$PR1" \
            "probe ($arm): a new lease skips $PR0, whose UDP side another program holds"
    done
    kill "$udphold" 2>/dev/null
    wait "$udphold" 2>/dev/null || true
else
    skip "no two free ports in a row" "probe: supervised"
    skip "no two free ports in a row" "probe: preloaded"
fi

# ------------------------------------ getpeername of another host's port
# A peer on another host whose port happens to be one of the group's real
# ports is that host's port, not ours: getpeername shows it as it is, as
# the preload has it (front.h), supervised or not. The other host is a
# network namespace inside the test's own (unshare -rn), behind a veth.
RPORT=7072
# remote-in.sh BIN TAG: a server on RPORT (its real port: the range's one
# port), one on another host at that real port, a client of each.
cat >"$T/remote-in.sh" <<'EOF'
bin=$1
tag=$2
served() {
    i=0
    until grep -q port= "$1"; do
        i=$((i + 1))
        [ "$i" -gt 600 ] && break
        sleep 0.1
    done
}
"$bin" serve "$RPORT" local 1 >"$T/remote-local.$tag" 2>&1 &
served "$T/remote-local.$tag"
real=$(awk '$1 == "tcp" { print $3 }' "$PORTSHIM_MAP_FILE")
nsenter -t "$INNER" -n "$bin" serve "$real" remote 1 \
    >"$T/remote-far.$tag" 2>&1 &
served "$T/remote-far.$tag"
"$bin" get -a 10.9.0.2 "$real" | sed "s/=$real\$/=REAL/"
"$bin" get "$RPORT"
wait
EOF
cat >"$T/remote.sh" <<'EOF'
ip link set lo up || exit 3
unshare -n sleep 600 &
INNER=$!
export INNER
i=0
until [ "$(readlink "/proc/$INNER/ns/net")" != "$(readlink /proc/self/ns/net)" ]; do
    i=$((i + 1))
    [ "$i" -gt 600 ] && exit 3
    sleep 0.1
done
ip link add v0 type veth peer name v1 netns "$INNER" || exit 3
{ ip addr add 10.9.0.1/24 dev v0 && ip link set v0 up; } || exit 3
nsenter -t "$INNER" -n sh -c 'ip link set lo up &&
    ip addr add 10.9.0.2/24 dev v1 && ip link set v1 up' || exit 3
"$PORTSHIM" run --supervise --ports "$RPORT" --range 23999-23999 \
    --map "$T/remote-sv.map" -- sh "$T/remote-in.sh" "$PSSV" sv
if [ -x "$PSSVD" ]; then
    "$PORTSHIM" run --ports "$RPORT" --range 23999-23999 \
        --map "$T/remote-pl.map" -- sh "$T/remote-in.sh" "$PSSVD" pl
fi
kill "$INNER"
EOF
if command -v ip >/dev/null 2>&1 && command -v nsenter >/dev/null 2>&1 &&
    unshare -rn true 2>/dev/null; then
    env RPORT="$RPORT" T="$T" PORTSHIM="$PORTSHIM" PSSV="$PSSV" PSSVD="$PSSVD" \
        unshare -rn sh "$T/remote.sh" >"$T/remote.out" 2>"$T/remote.err"
    want="remote peer=REAL local peer=$RPORT"
    # Lines 1-4: supervised; 5-8: preloaded.
    is "$(sed -n 1,4p "$T/remote.out" | tr '\n' ' ' | sed 's/ $//')" \
        "$want" \
        "supervised: another host's peer at a group's real port is shown as it is"
    if [ -x "$PSSVD" ]; then
        is "$(sed -n 5,8p "$T/remote.out" | tr '\n' ' ' | sed 's/ $//')" \
            "$want" "preloaded: the same"
    else
        skip "no dynamic pssv" "preloaded: the same"
    fi
    [ -s "$T/remote.err" ] && diag_file "$T/remote.err"
else
    skip "no unshare -rn, ip or nsenter here" \
        "supervised: another host's peer at a group's real port"
    skip "no unshare -rn, ip or nsenter here" "preloaded: the same"
fi

# ------------------------------------ a blocking connect stalls nothing
# A listener with a backlog of 0 that never accepts: a second connect to
# it waits for the SYN to be retried, for minutes. While the supervisor
# performs that connect, another copy's bind, connect and getsockname
# must still be answered.
HPORT=9000
cat >"$T/block.sh" <<EOF
"$PSSV" hold $HPORT >"$T/hold.out" 2>&1 &
hold=\$!
i=0
until grep -q port= "$T/hold.out"; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
hex=\$(awk '\$1 == "tcp" && \$2 == $HPORT { printf "%04X", \$3 }' \
    "$T/block.map")
# syn_sent: the connects to the holder's real port that wait for their
# SYN to be answered.
syn_sent() {
    awk -v p="\$hex" '\$4 == "02" { split(\$3, a, ":"); if (a[2] == p) n++ }
        END { print n + 0 }' /proc/net/tcp
}
for c in 1 2 3; do
    "$PSSV" get $HPORT >/dev/null 2>&1 &
    echo \$! >>"$T/blocked.pids"
done
i=0
until [ "\$(syn_sent)" -ge 1 ]; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
syn_sent >"$T/blocked.before"
"$PSSV" serve 9001 quick 1 >"$T/quick.server" 2>&1 &
i=0
until grep -q port= "$T/quick.server"; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
"$PSSV" get 9001 >"$T/quick.client" 2>&1
syn_sent >"$T/blocked.after"
kill \$hold
EOF
timeout 100 "$PORTSHIM" run --supervise --ports "$HPORT,9001" \
    --map "$T/block.map" -- sh "$T/block.sh" >"$T/block.log" 2>&1 || true
before=$(cat "$T/blocked.before" 2>/dev/null || echo 0)
after=$(cat "$T/blocked.after" 2>/dev/null || echo 0)
# The order: connects blocked (SYN_SENT) first, then another copy's bind,
# connect and answer, and the connects still blocked after that.
if [ "$(head -n 1 "$T/quick.client" 2>/dev/null)" = quick ] &&
    [ "$before" -ge 1 ] && [ "$after" -ge 1 ]; then
    ok "a connect blocked in the supervisor does not stall another" \
        "copy's bind and connect (done while $after connect(s) still" \
        "waited)"
else
    not_ok "a blocked connect does not stall the others"
    diag "quick client: '$(cat "$T/quick.client" 2>/dev/null)'," \
        "blocked connects before: $before, after: $after"
    diag_file "$T/block.log"
fi
if [ -r "$T/blocked.pids" ]; then
    while read -r p; do
        kill "$p" 2>/dev/null || true
    done <"$T/blocked.pids"
fi

# -------------------------------------------------------- io_uring
is "$("$PORTSHIM" run --supervise -- "$PSSV" uring 2>"$T/uring.err")" \
    ENOSYS "io_uring_setup fails with ENOSYS under --supervise"

# ------------------------------------ other system calls run untouched
mkdir "$T/files"
"$PORTSHIM" run --supervise -- "$PSSV" files "$T/files" 2000 7 \
    >"$T/files.out" 2>&1 && st=0 || st=$?
is "$st" 7 \
    "a static program's 2000-file workload runs; its status (7) passes"
is "$(find "$T/files" -type f | wc -l | tr -d ' ')" 0 \
    "the workload left no file behind"

mkdir "$T/shfiles"
# shellcheck disable=SC2016 # the inner shell expands them
"$PORTSHIM" run --supervise -- sh -c '
    cd "$1" || exit 99
    i=0
    while [ $i -lt 300 ]; do
        echo "$i" >"f$i" && cat "f$i" >/dev/null || exit 98
        i=$((i + 1))
    done
    mkdir d && cp f* d/ && ls d | wc -l >count && rm -r d f* || exit 97
    exit 5' sh "$T/shfiles" >"$T/shfiles.out" 2>&1 && st=0 || st=$?
is "$st:$(tr -d ' ' <"$T/shfiles/count" 2>/dev/null)" "5:300" \
    "a shell workload (300 files, cp, ls, rm) runs and its status passes"

"$PORTSHIM" run --supervise -- sh -c 'kill -KILL $$' 2>/dev/null &&
    st=0 || st=$?
is "$st" 137 "a supervised program killed by SIGKILL gives status 137"

# --------------------------------------- PORTSHIM_BYPASS=supervise
PORTSHIM_BYPASS=supervise
export PORTSHIM_BYPASS
bg "$T/bypass.log" "$PORTSHIM" run --ports "$VPORT" --map "$T/bypass.map" \
    -- "$PSSV" serve "$VPORT" bypass
bypass_pid=$ps_last_pid
unset PORTSHIM_BYPASS
if wait_for_map "$T/bypass.map" "$VPORT" 20; then
    real=$(map_real "$T/bypass.map" tcp "$VPORT")
    wait_tcp 127.0.0.1 "$real" 10 || true
    is "$("$PSTCP" connect 127.0.0.1 "$real" 2>/dev/null | head -n 1)" \
        "ok bypass" \
        "PORTSHIM_BYPASS=supervise: a static CMD is supervised (port $real)"
else
    not_ok "PORTSHIM_BYPASS=supervise: a static CMD is supervised"
    diag_file "$T/bypass.log"
fi
kill_tree "$bypass_pid"
if grep -q "cannot move its ports" "$T/bypass.log"; then
    not_ok "PORTSHIM_BYPASS=supervise: no bypass warning for it"
    diag_file "$T/bypass.log"
else
    ok "PORTSHIM_BYPASS=supervise: no bypass warning for it"
fi

# A wrapped process that starts a static program: the preload's exec
# wrappers run it as `portshim supervise -- PROGRAM` instead of warning.
# Two groups at once, both servers up before either client starts, each
# client reaching its own server; the client's environment drops
# PORTSHIM_PORTS (env -u), which supervise needs, so the wrapper puts it
# back.
cat >"$T/wrapped.sh" <<EOF
. "$T/reap.sh"
"$PSSV" serve $VPORT "\$1" 1 >"$T/wrapped-\$1.server" &
srv=\$!
i=0
until grep -q port= "$T/wrapped-\$1.server" 2>/dev/null; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
: >"$T/wrapped-\$1.up"
i=0
until [ -e "$T/wrapped-wa.up" ] && [ -e "$T/wrapped-wb.up" ]; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
env -u PORTSHIM_PORTS "$PSSV" get $VPORT
reap \$srv
EOF
for g in wa wb; do
    PORTSHIM_BYPASS=supervise PORTSHIM_LOG=info "$PORTSHIM" run \
        --ports "$VPORT" --group "$g" -- sh "$T/wrapped.sh" "$g" \
        >"$T/wrapped-$g.out" 2>"$T/wrapped-$g.err" &
    eval "wrapped_$g=\$!"
done
for g in wa wb; do
    eval "wait \$wrapped_$g" && st=0 || st=$?
    is "$st:$(head -n 1 "$T/wrapped-$g.out")" "0:$g" \
        "BYPASS=supervise, wrapped shell: group $g's static client reaches its own static server"
done
like "$T/wrapped-wa.err" "pssv is statically linked.*: running it as '[^']*portshim supervise -- [^']*pssv' \\(PORTSHIM_BYPASS=supervise\\)" \
    "the exec wrapper says it runs the static program under supervise"
if grep -q "cannot move its ports" "$T/wrapped-wa.err" "$T/wrapped-wb.err"
then
    not_ok "no bypass warning for the wrapped static programs"
    diag_file "$T/wrapped-wa.err"
else
    ok "no bypass warning for the wrapped static programs"
fi
like "$T/wrapped-wa.server" "^port=$VPORT\$" \
    "the wrapped static server sees its virtual port (getsockname)"
like "$T/wrapped-wb.out" "^peer=$VPORT\$" \
    "the wrapped static client sees the virtual peer (getpeername)"

# The same through posix_spawn and posix_spawnp (Python's os.posix_spawn*):
# the static server gets a real port of the group (in its mapping file),
# and the static client reaches it.
cat >"$T/spawn.py" <<'EOF'
import os, sys, time
pssv, port, out = sys.argv[1], sys.argv[2], sys.argv[3]
def spawn(fn, path, args, name):
    fa = [(os.POSIX_SPAWN_OPEN, 1, out + "." + name,
           os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    return fn(path, [path] + args, os.environ, file_actions=fa)
real, cst, sst = "none", "-", "-"
srv = spawn(os.posix_spawn, pssv, ["serve", port, "spawned", "1"], "server")
try:
    for _ in range(100):
        with open(out + ".server") as f:
            if "port=" in f.read():
                break
        time.sleep(0.1)
    try:
        with open(os.environ["PORTSHIM_MAP_FILE"]) as f:
            for line in f:
                w = line.split()
                if w[:2] == ["tcp", port]:
                    real = w[2]
    except OSError:
        pass
    os.environ["PATH"] = os.path.dirname(pssv) + ":" + os.environ["PATH"]
    cli = spawn(os.posix_spawnp, os.path.basename(pssv), ["get", port],
                "client")
    cst = os.waitpid(cli, 0)[1]
finally:
    # The server answers one connection and exits; never leave it behind.
    for _ in range(50):
        pid, sst = os.waitpid(srv, os.WNOHANG)
        if pid:
            break
        time.sleep(0.1)
    else:
        os.kill(srv, 9)
        sst = os.waitpid(srv, 0)[1]
print(real, cst, sst)
EOF
got=$(PORTSHIM_BYPASS=supervise PORTSHIM_LOG=info "$PORTSHIM" run \
    --ports "$VPORT" --group spawn --map "$T/spawn.map" -- \
    "$PY" "$T/spawn.py" "$PSSV" "$VPORT" "$T/spawn" 2>"$T/spawn.err") ||
    true
spawn_real=${got%% *}
case $spawn_real in
'' | *[!0-9]* | "$VPORT") spawn_want="a real port of the group" ;;
*) spawn_want="$spawn_real 0 0:spawned" ;;
esac
is "$got:$(head -n 1 "$T/spawn.client" 2>/dev/null)" "$spawn_want" \
    "BYPASS=supervise: posix_spawn'd static server (real port $spawn_real), posix_spawnp'd client"
like "$T/spawn.err" "running it as '[^']*portshim supervise -- [^']*pssv'" \
    "the spawn wrappers say they run the static programs under supervise"

# Multipath TCP (Go 1.24's listeners use it by default): a static MPTCP
# server and client in each of two groups at once, both servers up before
# either client connects.
if "$PSSV" serve -m 0 probe 0 >/dev/null 2>"$T/mptcp-probe.err"; then
    cat >"$T/mptcp.sh" <<EOF
. "$T/reap.sh"
"$PSSV" serve -m $VPORT "\$1" 1 >"$T/mptcp-\$1.server" &
srv=\$!
i=0
until grep -q port= "$T/mptcp-\$1.server" 2>/dev/null; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
: >"$T/mptcp-\$1.up"
i=0
until [ -e "$T/mptcp-ma.up" ] && [ -e "$T/mptcp-mb.up" ]; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
"$PSSV" get -m $VPORT
reap \$srv
EOF
    for g in ma mb; do
        "$PORTSHIM" run --supervise --ports "$VPORT" --group "$g" -- \
            sh "$T/mptcp.sh" "$g" >"$T/mptcp-$g.out" 2>"$T/mptcp-$g.err" &
        eval "mptcp_$g=\$!"
    done
    for g in ma mb; do
        eval "wait \$mptcp_$g" && st=0 || st=$?
        is "$st:$(head -n 1 "$T/mptcp-$g.out"):$(cat "$T/mptcp-$g.server")" \
            "0:$g:port=$VPORT" \
            "MPTCP under --supervise: group $g's client reaches its own server, which sees port $VPORT"
    done
else
    skip "no Multipath TCP here: $(head -n 1 "$T/mptcp-probe.err")" \
        "MPTCP under --supervise"
fi

# ------------------------------------------------- portshim supervise
# Inside a group that a plain `portshim run` made: the supervisor joins
# the environment's group, and the run's mapping file shows the port.
cat >"$T/join.sh" <<EOF
. "$T/reap.sh"
"$PORTSHIM" supervise -- "$PSSV" serve $VPORT joined 1 >"$T/join.server" &
srv=\$!
i=0
until grep -q port= "$T/join.server" 2>/dev/null; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
"$PORTSHIM" supervise -- "$PSSV" get -n $VPORT
reap \$srv
EOF
got=$("$PORTSHIM" run --ports "$VPORT" --group join --map "$T/join.map" -- \
    sh "$T/join.sh" 2>"$T/join.err" | head -n 1)
is "$got" joined \
    "portshim supervise: a static server and client in a plain run's group"
"$PORTSHIM" supervise -- true 2>"$T/nogroup.err" && st=0 || st=$?
is "$st" 2 "portshim supervise outside any group is a usage error"

# A run --supervise inside another: the kernel allows one listener per
# process, so the outer supervisor serves the inner run's group.
cat >"$T/nest.sh" <<EOF
. "$T/reap.sh"
"$PSSV" serve $VPORT nested 1 >"$T/nest.server" &
srv=\$!
i=0
until grep -q port= "$T/nest.server" 2>/dev/null; do
    i=\$((i + 1)); [ "\$i" -gt 600 ] && break; sleep 0.1
done
"$PSSV" get $VPORT
reap \$srv
EOF
got=$("$PORTSHIM" run --supervise --ports "$VPORT" --group outer -- \
    "$PORTSHIM" run --supervise --ports "$VPORT" --group inner \
    --map "$T/inner.map" -- sh "$T/nest.sh" 2>"$T/nest.err" | head -n 1)
is "$got" nested \
    "run --supervise inside run --supervise: the inner group's copy works"

# PORTSHIM_BYPASS=fail must not refuse what the supervisor sees: a
# wrapped shell starting a static program under --supervise.
got=$(PORTSHIM_BYPASS=fail "$PORTSHIM" run --supervise --ports "$VPORT" -- \
    sh -c "\"$PSSV\" uring" 2>"$T/fail.err") || true
is "$got" ENOSYS \
    "PORTSHIM_BYPASS=fail: a wrapped shell starts a static program under it"

# A supervised program dies with its supervisor (SIGKILLed by a test
# harness, say) instead of lingering on the group's port with every
# intercepted call failing: `run --supervise`, and `portshim supervise`
# as the exec wrappers start it.
# child_of PID: prints PID's first child once it has one (10 s at most;
# nothing if none came).
child_of() {
    co_child=""
    co_n=0
    while [ -z "$co_child" ] && [ "$co_n" -lt 100 ]; do
        co_child=$(pgrep -P "$1" 2>/dev/null | head -n 1)
        [ -n "$co_child" ] || sleep 0.1
        co_n=$((co_n + 1))
    done
    echo "$co_child"
}
# orphan_check WHAT SUPERVISOR_PID: kills the supervisor, then expects its
# child (the server) gone within 5 s.
orphan_check() {
    oc_child=$(child_of "$2")
    if [ -z "$oc_child" ]; then
        not_ok "$1: the supervised server started"
        return
    fi
    kill -KILL "$2" 2>/dev/null
    if wait_exit "$oc_child" 5; then
        ok "$1: SIGKILL to the supervisor ends the supervised server too"
    else
        not_ok "$1: SIGKILL to the supervisor ends the supervised server too"
        kill -KILL "$oc_child" 2>/dev/null
    fi
}
# Under `run`, the supervisor is the group's keeper, run's child.
bg "$T/orphan-run.log" "$PORTSHIM" run --supervise --ports "$VPORT" \
    --group orphan-run -- "$PSSV" serve "$VPORT" orphan
keeper=$(child_of "$ps_last_pid")
orphan_check "run --supervise" "${keeper:-0}"
bg "$T/orphan-sv.log" env PORTSHIM_PORTS="$VPORT" PORTSHIM_GROUP=orphan-sv \
    "$PORTSHIM" supervise -- "$PSSV" serve "$VPORT" orphan
orphan_check "portshim supervise" "$ps_last_pid"

# ------------------------------- a kernel without what --supervise needs
for call in seccomp pidfd_getfd; do
    "$PSSV" deny "$call" "$PORTSHIM_BIN" run --supervise -- true \
        >"$T/deny.out" 2>"$T/deny.err" && st=0 || st=$?
    if [ "$st" = 125 ] && grep -q "^portshim: --supervise: .*$call" \
        "$T/deny.err"; then
        ok "without $call, --supervise fails (125) with a clear message"
    else
        not_ok "without $call, --supervise fails (125) with a message"
        diag "status $st"
        diag_file "$T/deny.err"
    fi
done

done_testing
