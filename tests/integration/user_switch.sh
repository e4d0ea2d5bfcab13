#!/bin/sh
# SPDX-License-Identifier: MIT
# user_switch.sh - group members that run as another user than the root
# `portshim run` that started them: servers that switch user before they
# bind (memcached -u nobody, mosquitto's default `user mosquitto`) and a
# server started by a root script through runuser and setpriv (pg_ctl as
# postgres). Four copies of each on their usual port at once: each
# client reaches its own copy, the mapping files are published, the
# switched processes use the group's one registry (never one of their
# own), and nothing is left once the copies stop. Then the same for
# memcached with the default registry location, in a private /dev/shm.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=group_end.sh
. "$(dirname "$0")/group_end.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root (servers switch user)"
command -v setpriv >/dev/null 2>&1 || skip_all "needs setpriv (util-linux)"

RANGE=19400-19499
COPIES="1 2 3 4"
: >"$T/.start"

serve() {
    sv_g=$1
    sv_ports=$2
    shift 2
    bg "$T/$sv_g.log" "$PORTSHIM" run --ports "$sv_ports" --range "$RANGE" \
        --group "$sv_g" --map "$T/$sv_g.map" -- "$@"
    eval "pid_$(echo "$sv_g" | tr -- '-' _)=\$ps_last_pid"
}

# wait_mapped G VPORT: waits for the group's lease and for its mapping
# file (written by the keeper for a member of another uid).
wait_mapped() {
    wm_real=$(capture "$PORTSHIM" wait --group "$1" --timeout 30 "$2")
    wm_n=300
    while [ "$wm_n" -gt 0 ] && [ -n "$wm_real" ] &&
        [ "$(map_real "$T/$1.map" tcp "$2")" != "$wm_real" ]; do
        sleep 0.1
        wm_n=$((wm_n - 1))
    done
    echo "$wm_real"
}

# stop_group G: stops the server that `serve` started in group G.
stop_group() {
    eval "sg_pid=\$pid_$(echo "$1" | tr -- '-' _)"
    # shellcheck disable=SC2154 # set by serve
    kill -TERM "$sg_pid" 2>/dev/null || true
    wait_exit "$sg_pid" 20 || kill_tree "$sg_pid"
}

# Python: KEY VALUE -> sets then gets a memcached key on 127.0.0.1:11211.
MC='
import socket, sys
s = socket.create_connection(("127.0.0.1", 11211), timeout=10)
f = s.makefile("rb")
if len(sys.argv) > 2:
    v = sys.argv[2].encode()
    s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (sys.argv[1].encode(), len(v), v))
    f.readline()
s.sendall(b"get %s\r\n" % sys.argv[1].encode())
line = f.readline()
if line.startswith(b"VALUE"):
    print(f.readline().strip().decode())
'

# -------------------------------------------------------------- memcached
if command -v memcached >/dev/null 2>&1; then
    for i in $COPIES; do
        serve "mc-$i" 11211 memcached -u nobody -l 127.0.0.1 -p 11211 -U 0
    done
    for i in $COPIES; do
        real=$(wait_mapped "mc-$i" 11211)
        check "memcached copy $i: switched to nobody, then bound ($real)" \
            test -n "$real"
        got=$(map_real "$T/mc-$i.map" tcp 11211)
        is "$got" "$real" "memcached copy $i: its mapping file is published"
        in_group "mc-$i" 11211 "$PY" -c "$MC" owner "memcached-copy-$i" \
            >/dev/null 2>&1 || true
    done
    for i in $COPIES; do
        got=$(capture in_group "mc-$i" 11211 "$PY" -c "$MC" owner)
        is "$got" "memcached-copy-$i" "memcached copy $i: reads its own key"
    done
    user=$("$PORTSHIM" ls --group mc-1 2>/dev/null | awk 'NR == 2 { print $5 }')
    owner=$(stat -c %U "/proc/$user" 2>/dev/null || echo '?')
    is "$owner" nobody "memcached copy 1: the lease's maker runs as nobody"
    for i in $COPIES; do
        stop_group "mc-$i"
        expect_group_end "mc-$i" "memcached copy $i"
    done
else
    skip "memcached is not installed (Debian package memcached)" memcached
fi

# -------------------------------------------------------------- mosquitto
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [ -x "$MOSQ" ] && command -v mosquitto_pub >/dev/null 2>&1 &&
    id mosquitto >/dev/null 2>&1; then
    for i in $COPIES; do
        # No `user` line: mosquitto started as root switches to the
        # user mosquitto before it opens its listeners.
        cat >"$T/mosq-$i.conf" <<CONF
listener 1883 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
CONF
        serve "mq-$i" 1883 "$MOSQ" -c "$T/mosq-$i.conf"
    done
    for i in $COPIES; do
        real=$(wait_mapped "mq-$i" 1883)
        check "mosquitto copy $i: switched user, then bound ($real)" \
            test -n "$real"
        in_group "mq-$i" 1883 mosquitto_pub -h 127.0.0.1 -p 1883 -t owner \
            -r -m "mosquitto-copy-$i" >/dev/null 2>&1 || true
    done
    for i in $COPIES; do
        got=$(capture in_group "mq-$i" 1883 mosquitto_sub -h 127.0.0.1 \
            -p 1883 -t owner -C 1 -W 10)
        is "$got" "mosquitto-copy-$i" \
            "mosquitto copy $i: its client gets its own retained message"
    done
    for i in $COPIES; do
        stop_group "mq-$i"
        expect_group_end "mq-$i" "mosquitto copy $i"
    done
else
    skip "mosquitto and mosquitto-clients are not installed" mosquitto
fi

# ------------------------------------------- postgres via runuser, setpriv
why=$(pg_unusable)
if [ -z "$why" ]; then
    pg_setup
    for i in $COPIES; do
        # Two copies through runuser, two through setpriv: a root script
        # starting postgres as the postgres user.
        if [ "$i" -le 2 ]; then
            set -- runuser -u postgres --
        else
            set -- setpriv --reuid postgres --regid postgres --init-groups --
        fi
        pg_start "$i" "pg-switch-$i" \
            "postgres copy $i: root starts pg_ctl through $1" \
            in_group "pg-$i" 5432 "$@"
    done
    for i in $COPIES; do
        got=$(capture in_group "pg-$i" 5432 "$PGBIN/psql" -h 127.0.0.1 \
            -p 5432 -U postgres -d postgres -Atc "show cluster_name")
        is "$got" "pg-switch-$i" "postgres copy $i: psql reaches its own copy"
        real=$(map_real "$T/pg-$i.map" tcp 5432)
        check "postgres copy $i: its mapping file is published ($real)" \
            test -n "$real"
    done
    for i in $COPIES; do
        in_group "pg-$i" 5432 runuser -u postgres -- "$PGBIN/pg_ctl" \
            -D "$PGT/data-$i" -m fast -w stop >>"$T/pg-$i.log" 2>&1 || true
        expect_group_end "pg-$i" "postgres copy $i"
    done
else
    skip "$why" "postgres through runuser/setpriv"
fi

# The switched servers used the group's registry: none made one of its
# own in its user's state folder.
n=$(find /dev/shm -maxdepth 2 -path '/dev/shm/portshim-*/registry' \
    ! -path '/dev/shm/portshim-0/*' -newer "$T/.start" 2>/dev/null |
    grep -c . || true)
is "$n" 0 "no registry was made under another user's state folder"

# ------------------------------------------- a member that lost the registry
# A member of another uid that closed the handed-down descriptor cannot
# use the group's registry: one line says why, and no registry of its own
# is made.
BIND='
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", 8080))
    print("bound", s.getsockname()[1])
except OSError as e:
    print("error", e.errno)
'
cat >"$T/lose.sh" <<'EOF'
fd=${PORTSHIM_REGISTRY_FD%%:*}
eval "exec $fd>&-"
exec "$PY" -c "$BIND"
EOF
chmod 755 "$T/lose.sh"
chmod 711 "$T"
got=$(PY="$PY" BIND="$BIND" in_group lose 8080 setpriv --reuid nobody \
    --regid nogroup --clear-groups -- sh "$T/lose.sh" 2>"$T/lose.err" ||
    true)
is "$got" "error 13" "a member that closed the registry's descriptor: EACCES"
like "$T/lose.err" \
    "runs as uid 65534, but its group's registry belongs to uid 0 and was not handed to it: the descriptor was closed" \
    "... with one line that names the cause"
n=$(grep -c . "$T/lose.err" || true)
is "$n" 1 "... and only that line"

# ------------------------------------ the default registry, private /dev/shm
if command -v memcached >/dev/null 2>&1 && command -v unshare >/dev/null &&
    unshare -m true 2>/dev/null; then
    cat >"$T/default.sh" <<'EOF'
set -u
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 3
unset PORTSHIM_REGISTRY XDG_RUNTIME_DIR
"$PORTSHIM" run --ports 11211 --range "$RANGE" --group dm -- \
    memcached -u nobody -l 127.0.0.1 -p 11211 -U 0 &
run=$!
"$PORTSHIM" wait --group dm --timeout 30 11211 >/dev/null || echo "no lease"
n=50
while [ "$n" -gt 0 ] && ! grep -q '^tcp ' /dev/shm/portshim-0/dm.map 2>/dev/null; do
    sleep 0.1
    n=$((n - 1))
done
"$PORTSHIM" run --ports 11211 --range "$RANGE" --group dm -- \
    "$PY" -c "$MC" owner default-registry
kill -TERM "$run"
wait "$run"
ls /dev/shm
ls /dev/shm/portshim-0
"$PORTSHIM" ls
EOF
    got=$(capture env PORTSHIM="$PORTSHIM" RANGE="$RANGE" PY="$PY" MC="$MC" \
        unshare -m sh "$T/default.sh")
    expect="default-registry
portshim-0
registry
GROUP  PROTO  VIRTUAL  REAL  PID  ALIVE  AGE  COMMAND"
    is "$got" "$expect" \
        "default registry: memcached -u nobody used root's, one registry, nothing left"
else
    skip "needs memcached and unshare -m" "default registry location"
fi

done_testing
