#!/bin/sh
# SPDX-License-Identifier: MIT
# mapfile_poll.sh - a reader polling a group's mapping file while the
# group's mapping changes hundreds of times never sees a partial file,
# and the writer never follows a symlink someone placed at the final
# name or at its temporary names.
#
# The writer is one process under the shim binding and closing 300
# virtual ports one after another (TCP, and UDP on every other port:
# 450 changes of the mapping, each a rewrite of the file); the reader
# parses the whole file in a tight loop until the writer is done. Every
# 30 ports the writer waits until the reader has seen the entries made
# so far (the reader writes down each new count): the reader sees the
# file change at least 10 times while it polls, however the two are
# scheduled.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -n "${PORTSHIM_LIB:-}" ] || bail_out "PORTSHIM_LIB is not set"
PRELOAD=${PORTSHIM_ASAN_RUNTIME:+$PORTSHIM_ASAN_RUNTIME:}$PORTSHIM_LIB
ASANOPTS=${PORTSHIM_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}

N=300
VBASE=12000
MAP=$T/poll.map

STEP=30
bg "$T/reader.log" "$PSSTRESS" mapread "$MAP" "$T/stop" "$T/seen"
reader=$ps_last_pid
status=0
timeout 120 env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
    PORTSHIM_PORTS="$VBASE-$((VBASE + N - 1))" PORTSHIM_GROUP=poll \
    PORTSHIM_RANGE=17000-17999 \
    PORTSHIM_MAP_FILE="$MAP" \
    "$PSSTRESS" churn "$N" "$VBASE" "$T/seen" "$STEP" >"$T/writer.log" \
    2>&1 || status=$?
touch "$T/stop"
rstatus=0
wait "$reader" || rstatus=$?

is "$status:$(cat "$T/writer.log")" "0:churned $N" \
    "the writer bound $N virtual ports, TCP and UDP"
is "$rstatus" 0 "the reader never saw a partial file"
diag "reader: $(cat "$T/reader.log")"
versions=$(awk '{ print $4 }' "$T/reader.log")
if [ "${versions:-0}" -ge $((N / STEP)) ]; then
    ok "the reader saw the file change while it polled ($versions versions)"
else
    not_ok "the reader saw the file change while it polled"
fi
partial=$(awk '{ print $6 }' "$T/reader.log")
is "$partial" 0 "no read of the file was partial"
last=$(awk '{ print $10 }' "$T/reader.log")
is "$last" $((N + N / 2)) "the final file lists all $((N + N / 2)) entries"
is "$(head -n 1 "$MAP")" "# portshim map v1 group=poll" "with its header"

# ------------------------------------------------ planted symlinks
echo "precious" >"$T/victim"
ln -s "$T/victim" "$T/sym.map"
bg "$T/storm.log" env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="$ASANOPTS" \
    PORTSHIM_PORTS="$VBASE" PORTSHIM_GROUP=sym PORTSHIM_MAP_FILE="$T/sym.map" \
    "$PSSTRESS" storm 1 1 "$VBASE" "$T/go" "$T/stop2"
pid=$ps_last_pid
n=100
while [ "$n" -gt 0 ] && ! grep -q '^ready$' "$T/storm.log"; do
    sleep 0.1
    n=$((n - 1))
done
# The writer's temporary names are ".<name>.tmp.<pid>.<n>": plant the
# first ones, pointing at the victim too.
for k in 0 1 2 3; do
    ln -s "$T/victim" "$T/.sym.map.tmp.$pid.$k"
done
touch "$T/go"
n=100
while [ "$n" -gt 0 ] && ! grep -q '^done ' "$T/storm.log"; do
    sleep 0.1
    n=$((n - 1))
done
touch "$T/stop2"
wait "$pid" || true
is "$(cat "$T/victim")" "precious" "the symlinks' target is untouched"
if [ -f "$T/sym.map" ] && [ ! -L "$T/sym.map" ]; then
    ok "the mapping file replaced the symlink at its name"
else
    not_ok "the mapping file replaced the symlink at its name"
fi
real=$(map_real "$T/sym.map" tcp "$VBASE")
is "$(awk '$1 == "tcp" { print $2, $3 }' "$T/storm.log")" "$VBASE $real" \
    "and lists the socket's real port"
planted=0
for k in 0 1 2 3; do
    [ -L "$T/.sym.map.tmp.$pid.$k" ] && planted=$((planted + 1))
done
is "$planted" 4 "the planted temporary names were not written through"

done_testing
