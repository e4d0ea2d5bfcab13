#!/bin/sh
# SPDX-License-Identifier: MIT
# group_job.sh ID DIR PSTCP VPORT - one job of group_from.sh: serves
# "job-ID" on 127.0.0.1:VPORT, waits (10 s at most) until all four jobs
# of the run serve, fetches from VPORT and notes in DIR/result-ID what it
# saw and its group's real port, from the worker group's mapping file
# (<map stem>.<PARALLEL_SEQ>.map). Passes if it reached its own server.
set -u
id=$1
dir=$2
pstcp=$3
vport=$4

"$pstcp" listen 127.0.0.1 "$vport" "job-$id" >"$dir/listen-$id.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT

n=100
until grep -q '^listening' "$dir/listen-$id.log"; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || exit 1
    sleep 0.1
done
touch "$dir/ready-$id"
n=100
until [ "$(find "$dir" -name 'ready-*' | wc -l)" -ge 4 ]; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || break
    sleep 0.1
done

got=$("$pstcp" connect 127.0.0.1 "$vport")
map=${PORTSHIM_MAP_FILE%.map}.${PARALLEL_SEQ:-}.map
real=$(awk -v v="$vport" '$1 == "tcp" && $2 == v { print $3 }' "$map" \
    2>/dev/null)
echo "$id ${PARALLEL_SEQ:-} $(sed -n 1p "$dir/listen-$id.log") $got $real" \
    >"$dir/result-$id"
[ "$got" = "ok job-$id" ]
