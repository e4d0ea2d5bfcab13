#!/bin/sh
# SPDX-License-Identifier: MIT
# daemons.sh - servers started the way their users start them: they
# daemonize, so `portshim run` returns at once while the server lives on.
# Four copies each of nginx (its default `daemon on`), redis-server
# --daemonize yes and `pg_ctl start` (as the postgres user, as Debian's
# postgres runs), all on their usual ports at once. For each copy: run
# returns 0 with the server still running, the group's client reaches its
# own copy, and once the copy is stopped the group ends by itself: its
# keeper exits, and then no lease and no mapping file are left.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=group_end.sh
. "$(dirname "$0")/group_end.sh"

RANGE=19300-19399
COPIES="1 2 3 4"

# ------------------------------------------- the caller's files are let go
# run returns when CMD does, and the group that lives on holds none of
# the caller's files: a command substitution gets its end while CMD's
# background child still runs, and so does a pipe given as descriptor 5.
mkfifo "$T/fifo"
cat "$T/fifo" >"$T/fifo.out" &
catpid=$!
out=$("$PORTSHIM" run --ports 8080 --range "$RANGE" --group linger \
    --map "$T/linger.map" -- sh -c \
    'sleep 300 </dev/null >/dev/null 2>&1 5>&- & echo "$!"' 5>"$T/fifo")
case $out in
'' | *[!0-9]*) out=0 ;;
esac
daemon_pid_file "$T/linger.pid"
echo "$out" >"$T/linger.pid"
check "\$(portshim run -- ...) returns while CMD's background child runs" \
    alive "$out"
if wait_exit "$catpid" 60; then
    check "a pipe given to run as descriptor 5 sees its end meanwhile" \
        alive "$out"
else
    not_ok "a pipe given to run as descriptor 5 sees its end meanwhile"
    kill "$catpid" 2>/dev/null || true
fi
kill "$out" 2>/dev/null || true
expect_group_end linger "the background child's group"

# ------------------------------------------------------------------ nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ -x "$NGINX" ]; then
    for i in $COPIES; do
        d=$T/nginx-$i
        mkdir -p "$d"
        # No `daemon` line: nginx daemonizes, as it does by default.
        nginx_conf "$d" 1 127.0.0.1:8080 "nginx-daemon-$i"
        rc=0
        in_group "dn-$i" 8080 "$NGINX" -p "$d" -c "$d/nginx.conf" \
            -e "$d/error.log" >"$T/nginx-$i.log" 2>&1 || rc=$?
        is "$rc" 0 "nginx copy $i: run returns 0 once nginx has daemonized"
        daemon_pid_file "$d/nginx.pid"
    done
    for i in $COPIES; do
        d=$T/nginx-$i
        check "nginx copy $i: still running after run returned" \
            alive "$(cat "$d/nginx.pid" 2>/dev/null || echo 0)"
        real=$(map_real "$T/dn-$i.map" tcp 8080)
        check "nginx copy $i: its mapping file outlives run (8080 -> $real)" \
            test -n "$real"
        got=$(capture in_group "dn-$i" 8080 "$PY" -c "$HTTP_GET" \
            http://127.0.0.1:8080/)
        is "$got" "nginx-daemon-$i" "nginx copy $i: its client gets its page"
    done
    for i in $COPIES; do
        "$PORTSHIM" ls --group "dn-$i" >"$T/ls-$i.out" 2>&1 || true
        # The process that made the lease exited when nginx daemonized:
        # ls shows the daemon that holds the socket now.
        like "$T/ls-$i.out" \
            "^dn-$i +tcp +8080 +[0-9]+ +[0-9]+ +yes +[0-9a-z]+ +nginx: master process" \
            "nginx copy $i: ls shows the group alive, with the daemon"
    done
    for i in $COPIES; do
        d=$T/nginx-$i
        in_group "dn-$i" 8080 "$NGINX" -p "$d" -c "$d/nginx.conf" \
            -e "$d/error.log" -s stop >>"$T/nginx-$i.log" 2>&1 || true
        expect_group_end "dn-$i" "nginx copy $i"
    done
else
    skip "nginx is not installed (Debian package nginx-light)" "nginx daemons"
fi

# ------------------------------------------------------------------ redis
if command -v redis-server >/dev/null 2>&1 &&
    command -v redis-cli >/dev/null 2>&1; then
    for i in $COPIES; do
        d=$T/redis-$i
        mkdir -p "$d"
        rc=0
        in_group "dr-$i" 6379 redis-server --port 6379 --bind 127.0.0.1 \
            --daemonize yes --pidfile "$d/redis.pid" --dir "$d" \
            --logfile "$d/redis.log" --save '' --appendonly no \
            >"$T/redis-$i.log" 2>&1 || rc=$?
        is "$rc" 0 "redis copy $i: run returns 0 (--daemonize yes)"
    done
    for i in $COPIES; do
        d=$T/redis-$i
        # redis binds after it daemonized: wait for the lease.
        real=$(capture "$PORTSHIM" wait --group "dr-$i" --timeout 30 6379)
        check "redis copy $i: the daemon's bind made a lease ($real)" \
            test -n "$real"
        daemon_pid_file "$d/redis.pid"
        in_group "dr-$i" 6379 redis-cli -p 6379 set owner "redis-daemon-$i" \
            >/dev/null 2>&1 || true
    done
    for i in $COPIES; do
        got=$(capture in_group "dr-$i" 6379 redis-cli -p 6379 get owner)
        is "$got" "redis-daemon-$i" "redis copy $i: reads back its own key"
    done
    # The lease was made by the daemon, whose parent (CMD) is gone: gc
    # must not take it while the daemon lives.
    "$PORTSHIM" gc >/dev/null 2>&1 || true
    for i in $COPIES; do
        real=$(capture "$PORTSHIM" port --group "dr-$i" 6379)
        check "redis copy $i: gc leaves the live daemon's lease ($real)" \
            test -n "$real"
    done
    for i in $COPIES; do
        in_group "dr-$i" 6379 redis-cli -p 6379 shutdown nosave \
            >/dev/null 2>&1 || true
        expect_group_end "dr-$i" "redis copy $i"
    done
else
    skip "redis-server is not installed (Debian package redis-server)" \
        "redis daemons"
fi

# --------------------------------------------------------------- postgres
why=$(pg_unusable)
if [ -z "$why" ]; then
    # pg_ctl runs as postgres, and so does portshim here: the group, its
    # registry and its mapping files are postgres's own.
    pg_setup
    as_pg() {
        runuser -u postgres -- env PORTSHIM_REGISTRY="$PGT/registry" "$@"
    }
    pg_group() {
        pgg=$1
        shift
        as_pg "$PORTSHIM" run --ports 5432 --range "$RANGE" --group "$pgg" \
            --map "$PGT/$pgg.map" -- "$@"
    }
    for i in $COPIES; do
        pg_start "$i" "pg-daemon-$i" \
            "postgres copy $i: pg_ctl start under run returns 0" \
            pg_group "dp-$i"
    done
    for i in $COPIES; do
        got=$(capture pg_group "dp-$i" "$PGBIN/psql" -h 127.0.0.1 -p 5432 \
            -U postgres -d postgres -Atc "show cluster_name")
        is "$got" "pg-daemon-$i" "postgres copy $i: psql reaches its own copy"
    done
    for i in $COPIES; do
        pg_group "dp-$i" "$PGBIN/pg_ctl" -D "$PGT/data-$i" -m fast -w stop \
            >>"$T/pg-$i.log" 2>&1 || true
        PORTSHIM_REGISTRY=$PGT/registry expect_group_end "dp-$i" \
            "postgres copy $i" "$PGT/dp-$i.map"
    done
else
    skip "$why" "postgres daemons"
fi

done_testing
