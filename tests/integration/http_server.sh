#!/bin/sh
# SPDX-License-Identifier: MIT
# http_server.sh - eight copies of the unmodified `python3 -m http.server
# 8080` run side by side, each under its own `portshim run`, and each
# group's client reaches its own copy at 127.0.0.1:8080. The same eight
# copies without portshim clash: one keeps the port, seven die with
# "Address already in use". Then the same over IPv6 (::1).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

N=8
pid=""
VPORT=8080
# http.server's "Serving HTTP on ..." line must reach its log at once.
PYTHONUNBUFFERED=1
export PYTHONUNBUFFERED

groups=""
i=1
while [ "$i" -le "$N" ]; do
    groups="$groups g$i"
    i=$((i + 1))
done

# Each copy serves a folder holding a file that only it has.
for g in $groups v6; do
    mkdir "$T/www-$g"
    echo "portshim test $$: the copy of group $g" >"$T/www-$g/id.txt"
done

# fetch GROUP URL: fetches URL with a client running in GROUP.
fetch() {
    "$PORTSHIM" run --ports "$VPORT" --group "$1" --map "$T/$1.map" -- \
        "$PY" -c "$HTTP_GET" "$2" 2>"$T/client-$1.err"
}

# ------------------------------------------------ eight copies under portshim
diag "starting $N copies of http.server on port $VPORT at once"
for g in $groups; do
    bg "$T/$g.log" "$PORTSHIM" run --ports "$VPORT" --group "$g" \
        --map "$T/$g.map" -- \
        "$PY" -m http.server "$VPORT" --bind 127.0.0.1 \
        --directory "$T/www-$g"
    eval "pid_$g=\$ps_last_pid"
done

reals=""
for g in $groups; do
    if wait_for_map "$T/$g.map" "$VPORT" 20; then
        real=$(map_real "$T/$g.map" tcp "$VPORT")
        reals="$reals $real"
        eval "real_$g=\$real"
        ok "$g: the mapping file shows tcp $VPORT -> $real"
    else
        eval "real_$g="
        not_ok "$g: the mapping file shows tcp $VPORT within 20 s"
        diag_file "$T/$g.map"
        diag_file "$T/$g.log"
    fi
done

# shellcheck disable=SC2086 # word splitting of the port list is wanted
distinct=$(printf '%s\n' $reals | sort -u | grep -c . || true)
is "$distinct" "$N" "the $N groups got $N distinct real ports:$reals"

bad=""
for real in $reals; do
    if [ "$real" -eq "$VPORT" ] || [ "$real" -lt 20000 ] ||
        [ "$real" -gt 32767 ]; then
        bad="$bad $real"
    fi
done
is "$bad" "" "every real port is in the default range 20000-32767"

# The eight clients run at once, each in its own group.
cpids=""
for g in $groups; do
    eval "real=\$real_$g"
    (
        if [ -n "$real" ] && ! wait_tcp 127.0.0.1 "$real" 10; then
            echo "nothing accepts on real port $real" >"$T/client-$g.wait"
        fi
        fetch "$g" "http://127.0.0.1:$VPORT/id.txt" >"$T/client-$g.out" ||
            true
    ) &
    cpids="$cpids $!"
done
for pid in $cpids; do
    wait "$pid" || true
done
for g in $groups; do
    want=$(cat "$T/www-$g/id.txt")
    got=$(cat "$T/client-$g.out" 2>/dev/null || true)
    if [ "$got" = "$want" ]; then
        ok "$g: a client in the group gets its own copy's file"
    else
        not_ok "$g: a client in the group gets its own copy's file"
        diag "got: '$got'"
        diag_file "$T/client-$g.wait"
        diag_file "$T/client-$g.err"
        diag_file "$T/$g.log"
    fi
done

# The server asked getsockname() for its port to print it: it must see
# the port it asked for, not the real one.
missing=""
for g in $groups; do
    grep -q "Serving HTTP on 127.0.0.1 port $VPORT " "$T/$g.log" ||
        missing="$missing $g"
done
is "$missing" "" "every server reports port $VPORT (getsockname)"

# A client joining a group must not take the group's mapping away.
changed=""
for g in $groups; do
    eval "real=\$real_$g"
    [ -n "$real" ] && [ "$(map_real "$T/$g.map" tcp "$VPORT")" = "$real" ] ||
        changed="$changed $g"
done
is "$changed" "" "the mapping files are unchanged after the clients exit"

# ------------------------------------------------ IPv6
if has_ipv6_loopback; then
    bg "$T/v6.log" "$PORTSHIM" run --ports "$VPORT" --group v6 \
        --map "$T/v6.map" -- \
        "$PY" -m http.server "$VPORT" --bind ::1 --directory "$T/www-v6"
    pid_v6=$ps_last_pid
    if wait_for_map "$T/v6.map" "$VPORT" 20; then
        real=$(map_real "$T/v6.map" tcp "$VPORT")
        wait_tcp ::1 "$real" 10 || diag "v6: nothing accepts on [::1]:$real"
        case " $reals " in
        *" $real "*) not_ok "v6: real port $real is new" ;;
        *) ok "v6: a server on [::1]:$VPORT got its own real port $real" ;;
        esac
    else
        not_ok "v6: the mapping file shows tcp $VPORT within 20 s"
        diag_file "$T/v6.log"
    fi
    want=$(cat "$T/www-v6/id.txt")
    got=$(fetch v6 "http://[::1]:$VPORT/id.txt") || true
    if [ "$got" = "$want" ]; then
        ok "v6: a client in the group gets its file from [::1]:$VPORT"
    else
        not_ok "v6: a client in the group gets its file from [::1]:$VPORT"
        diag "got: '$got'"
        diag_file "$T/client-v6.err"
    fi
    kill_tree "$pid_v6"
else
    skip "::1 cannot be bound on this host" "v6: server on [::1]:$VPORT"
    skip "::1 cannot be bound on this host" "v6: client to [::1]:$VPORT"
fi

# ------------------------------------------------ stopping
# SIGTERM to `portshim run` (as a CI job runner sends it) must reach the
# server, and the group must be released when run exits.
for g in $groups; do
    eval "kill -TERM \"\$pid_$g\"" 2>/dev/null || true
done
stuck=""
for g in $groups; do
    eval "pid=\$pid_$g"
    wait_exit "$pid" 10 || stuck="$stuck $g"
done
is "$stuck" "" "SIGTERM to portshim run stops it within 10 s"

still=""
for real in $reals; do
    listening "$real" && still="$still $real"
done
is "$still" "" "no server is left listening on a real port"

left=""
for g in $groups; do
    [ -e "$T/$g.map" ] && left="$left $g"
done
is "$left" "" "portshim run removes each mapping file when it exits"

# ------------------------------------------------ the same without portshim
# A free port of our own instead of 8080, so that other tests running at
# the same time are not disturbed.
P=$(free_port 40000 40999)
diag "starting $N copies of http.server on port $P at once, no portshim"
for g in $groups; do
    bg "$T/clash-$g.log" "$PY" -m http.server "$P" --bind 127.0.0.1 \
        --directory "$T/www-$g"
    eval "cpid_$g=\$ps_last_pid"
done

# Wait (bounded) until all but one have died.
n=200
while [ "$n" -gt 0 ]; do
    nalive=0
    for g in $groups; do
        eval "pid=\$cpid_$g"
        alive "$pid" && nalive=$((nalive + 1))
    done
    [ "$nalive" -le 1 ] && break
    sleep 0.1
    n=$((n - 1))
done

survivor=""
nalive=0
inuse=0
for g in $groups; do
    eval "pid=\$cpid_$g"
    if alive "$pid"; then
        survivor=$g
        nalive=$((nalive + 1))
    elif grep -q "Address already in use" "$T/clash-$g.log"; then
        inuse=$((inuse + 1))
    fi
done
is "$nalive" 1 "without portshim exactly one of $N copies keeps port $P"
is "$inuse" $((N - 1)) \
    "without portshim $((N - 1)) copies fail with 'Address already in use'"
if [ -n "$survivor" ]; then
    want=$(cat "$T/www-$survivor/id.txt")
    got=$("$PY" -c "$HTTP_GET" "http://127.0.0.1:$P/id.txt" 2>&1) || true
    is "$got" "$want" "without portshim every client reaches the survivor"
else
    not_ok "without portshim every client reaches the survivor"
fi

done_testing
