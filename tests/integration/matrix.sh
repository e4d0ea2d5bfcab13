# shellcheck shell=sh
# SPDX-License-Identifier: MIT
# matrix.sh - what the matrix tests share: N copies of an unmodified
# server on one virtual port, each under its own `portshim run` in a
# group of its own, and clients that must reach their own copy only.
# Source it after lib.sh, then set MATRIX (a name), PORTS (the --ports
# spec) and RANGE (the test's own real ports, LO-HI: tests run side by
# side under make -j, each with its own registry, and would otherwise
# race for the same real ports of the default range).
#
#   need CMD PACKAGE        skip the whole test unless CMD is installed
#   in_group I CMD...       runs CMD in copy I's group (a client joining it)
#   serve I CMD...          starts CMD in copy I's group, in the background,
#                           logging to $T/$MATRIX-I.log; sets pid_I
#   wait_copies VPORT [udp] waits until every copy's mapping file shows
#                           VPORT and (TCP) its real port listens; reports
#                           one result per copy and one for "all distinct";
#                           sets real_I for each copy
#   expect_each DESC WANT-PREFIX FUNCTION
#                           runs FUNCTION I (which the test defines) for
#                           every copy I at once, and expects each to
#                           print WANT-PREFIX-I

N=${MATRIX_COPIES:-4}
COPIES=""
ps_i=1
while [ "$ps_i" -le "$N" ]; do
    COPIES="$COPIES $ps_i"
    ps_i=$((ps_i + 1))
done

# need CMD PACKAGE
need() {
    nd_why="$1 is not installed (Debian package $2; scripts/test"
    command -v "$1" >/dev/null 2>&1 || skip_all "$nd_why installs it)"
}

# in_group I CMD...
in_group() {
    ig_i=$1
    shift
    "$PORTSHIM" run --ports "$PORTS" --range "$RANGE" --group "$MATRIX-$ig_i" \
        --map "$T/$MATRIX-$ig_i.map" -- "$@"
}

# serve I CMD...
serve() {
    sv_i=$1
    shift
    bg "$T/$MATRIX-$sv_i.log" "$PORTSHIM" run --ports "$PORTS" \
        --range "$RANGE" --group "$MATRIX-$sv_i" \
        --map "$T/$MATRIX-$sv_i.map" -- "$@"
    eval "pid_$sv_i=\$ps_last_pid"
}

# wait_copies VPORT [udp]
wait_copies() {
    wc_port=$1
    wc_proto=${2:-tcp}
    wc_reals=""
    for wc_i in $COPIES; do
        wc_map=$T/$MATRIX-$wc_i.map
        wc_n=200
        while [ "$wc_n" -gt 0 ] &&
            [ -z "$(map_real "$wc_map" "$wc_proto" "$wc_port")" ]; do
            eval "wc_pid=\$pid_$wc_i"
            # shellcheck disable=SC2154 # set by eval above
            alive "$wc_pid" || break
            sleep 0.1
            wc_n=$((wc_n - 1))
        done
        wc_real=$(map_real "$wc_map" "$wc_proto" "$wc_port")
        eval "real_$wc_i=\$wc_real"
        if [ -n "$wc_real" ] && { [ "$wc_proto" = udp ] ||
            wait_listening "$wc_real" 20; }; then
            wc_reals="$wc_reals $wc_real"
            ok "copy $wc_i: $wc_proto $wc_port -> real port $wc_real"
        else
            not_ok "copy $wc_i: $wc_proto $wc_port is mapped and served"
            diag_file "$wc_map"
            diag_file "$T/$MATRIX-$wc_i.log"
        fi
    done
    # shellcheck disable=SC2086 # one word per port
    wc_distinct=$(printf '%s\n' $wc_reals | sort -u | grep -c . || true)
    is "$wc_distinct" "$N" "the $N copies got $N distinct real ports:$wc_reals"
}

# wait_listening PORT TIMEOUT: waits until a TCP socket listens on PORT.
# (Not wait_tcp, which waits for a greeting that most servers never
# send.)
wait_listening() {
    wl_n=$(($2 * 10))
    while [ "$wl_n" -gt 0 ]; do
        listening "$1" && return 0
        sleep 0.1
        wl_n=$((wl_n - 1))
    done
    return 1
}

# expect_each DESC WANT-PREFIX FUNCTION
expect_each() {
    ee_desc=$1
    ee_want=$2
    ee_fn=$3
    ee_pids=""
    for ee_i in $COPIES; do
        "$ee_fn" "$ee_i" >"$T/expect-$ee_i.out" 2>"$T/expect-$ee_i.err" &
        ee_pids="$ee_pids $!"
    done
    for ee_pid in $ee_pids; do
        wait "$ee_pid" || true
    done
    for ee_i in $COPIES; do
        ee_got=$(cat "$T/expect-$ee_i.out")
        if [ "$ee_got" = "$ee_want-$ee_i" ]; then
            ok "copy $ee_i: $ee_desc"
        else
            not_ok "copy $ee_i: $ee_desc"
            diag "got:  '$ee_got'"
            diag "want: '$ee_want-$ee_i'"
            diag_file "$T/expect-$ee_i.err"
        fi
    done
}
