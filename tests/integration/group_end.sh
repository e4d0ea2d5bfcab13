# shellcheck shell=sh
# SPDX-License-Identifier: MIT
# group_end.sh - for tests of servers that outlive `portshim run`
# (daemons) or run as another user. Source it after lib.sh.
#
#   in_group G PORTS CMD...  runs CMD in group G (ports PORTS, real ports
#                            in $RANGE, mapping file $T/G.map)
#   daemon_pid_file FILE     the server writes its pid to FILE: it is
#                            killed when the test exits, if still alive
#   keeper_of G MAP          prints the pids of group G's keeper (the
#                            `portshim run --group G --map MAP` process
#                            left)
#   expect_group_end G DESC [MAP]
#                            waits (30 s at most) until group G's keeper
#                            has exited, then reports that it did, that
#                            no lease of G is left and that the mapping
#                            file MAP (default $T/G.map) is gone
#   PGBIN                    the newest PostgreSQL's bin folder, or ""
#   pg_unusable              prints why postgres cannot be tested here
#                            (nothing if it can)
#   pg_start I NAME DESC CMD...
#                            CMD... pg_ctl start of copy I (cluster_name
#                            NAME): checks it returns 0 (DESC) and that
#                            the postmaster is stopped at exit
#   pg_setup                 makes $PGT, a folder of the postgres user,
#                            with one initialised cluster per copy in
#                            $COPIES ($PGT/data-I); removed at exit

ps_pid_files=""

in_group() {
    ig_g=$1
    ig_ports=$2
    shift 2
    "$PORTSHIM" run --ports "$ig_ports" --range "$RANGE" --group "$ig_g" \
        --map "$T/$ig_g.map" -- "$@"
}

daemon_pid_file() {
    ps_pid_files="$ps_pid_files $1"
}

# Servers that daemonized left the test's process groups: stop them
# by their pid files when the test exits, however it exits.
ps_stop_daemons() {
    for ps_f in $ps_pid_files; do
        ps_p=$(head -n 1 "$ps_f" 2>/dev/null || true)
        case $ps_p in
        '' | *[!0-9]*) continue ;;
        esac
        kill -TERM "$ps_p" 2>/dev/null || continue
        wait_exit "$ps_p" 10 || kill -KILL "$ps_p" 2>/dev/null || true
    done
    if [ -n "${PGT:-}" ]; then
        rm -rf "$PGT"
    fi
}
ps_at_exit ps_stop_daemons

keeper_of() {
    pgrep -f -- "run .*--group $1 --map $2 " 2>/dev/null || true
}

expect_group_end() {
    ge_g=$1
    ge_desc=$2
    ge_map=${3:-$T/$1.map}
    ge_n=300
    while [ "$ge_n" -gt 0 ] && [ -n "$(keeper_of "$ge_g" "$ge_map")" ]; do
        sleep 0.1
        ge_n=$((ge_n - 1))
    done
    ge_k=$(keeper_of "$ge_g" "$ge_map")
    is "$ge_k" "" "$ge_desc: the group's keeper exits once the server is stopped"
    ge_leases=$("$PORTSHIM" ls --group "$ge_g" --json 2>/dev/null |
        grep -c '"real"' || true)
    is "$ge_leases" 0 "$ge_desc: then no lease of group $ge_g is left"
    check "$ge_desc: and its mapping file is gone" test ! -e "$ge_map"
}

PGBIN=""
for ps_d in /usr/lib/postgresql/*/bin; do
    [ -x "$ps_d/pg_ctl" ] && PGBIN=$ps_d
done

pg_unusable() {
    if [ -n "${PORTSHIM_ASAN_RUNTIME:-}" ]; then
        # `postgres -V` (which pg_ctl runs first) deadlocks in a futex
        # with libasan preloaded alone, without portshim.
        echo "postgres hangs under a preloaded sanitizer runtime"
    elif [ "$(id -u)" -ne 0 ] || [ -z "$PGBIN" ] ||
        ! id postgres >/dev/null 2>&1 ||
        ! command -v runuser >/dev/null 2>&1; then
        echo "needs root, postgresql and runuser"
    fi
}

pg_setup() {
    PGT=$(mktemp -d /tmp/portshim-pg.XXXXXX)
    chmod 755 "$PGT"
    chown postgres "$PGT"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGT/data" --auth=trust \
        --no-sync -U postgres >"$T/initdb.log" 2>&1 ||
        bail_out "initdb failed: $(tail -n 3 "$T/initdb.log")"
    for pg_i in $COPIES; do
        runuser -u postgres -- cp -a "$PGT/data" "$PGT/data-$pg_i"
        # Each copy its own socket folder; TCP on 127.0.0.1 only.
        mkdir -p "$PGT/sock-$pg_i"
        chown postgres "$PGT/sock-$pg_i"
        cat >>"$PGT/data-$pg_i/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = 5432
unix_socket_directories = '$PGT/sock-$pg_i'
fsync = off
CONF
    done
    # The registry lives in PGT too: postgres cannot enter the test's
    # own folder.
    chmod 711 "$T"
}

pg_start() {
    pgs_i=$1
    pgs_name=$2
    pgs_desc=$3
    shift 3
    pgs_rc=0
    "$@" "$PGBIN/pg_ctl" -D "$PGT/data-$pgs_i" -l "$PGT/pg-$pgs_i.log" -w \
        -o "-c cluster_name=$pgs_name" start >"$T/pg-$pgs_i.log" 2>&1 ||
        pgs_rc=$?
    is "$pgs_rc" 0 "$pgs_desc"
    [ "$pgs_rc" -eq 0 ] || diag_file "$PGT/pg-$pgs_i.log"
    daemon_pid_file "$PGT/data-$pgs_i/postmaster.pid"
}
