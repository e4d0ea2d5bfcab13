#!/bin/sh
# SPDX-License-Identifier: MIT
# fixed_job.sh ID DIR PSTCP VPORT N - one job of per_job.sh, as a test of
# a legacy suite would be: serves "job-ID" on the fixed port
# 127.0.0.1:VPORT, waits (20 s at most) until all N jobs of the run have
# tried to serve (so the servers run at the same time), fetches from
# VPORT and passes only if it reached its own server. Notes its group in
# DIR/group-ID and its attempt in DIR/tried-ID.
set -u
id=$1
dir=$2
pstcp=$3
vport=$4
jobs=$5

echo "${PORTSHIM_GROUP:-}" >"$dir/group-$id"
"$pstcp" listen 127.0.0.1 "$vport" "job-$id" >"$dir/listen-$id.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT

# Until the server listens, or has died (its bind failed).
n=200
until grep -q '^listening' "$dir/listen-$id.log"; do
    if ! kill -0 "$server" 2>/dev/null || [ "$n" -le 0 ]; then
        echo failed >"$dir/tried-$id"
        echo "job $id: the server on $vport did not start:" \
            "$(cat "$dir/listen-$id.log")" >&2
        exit 1
    fi
    n=$((n - 1))
    sleep 0.1
done
echo listening >"$dir/tried-$id"
n=200
until [ "$(find "$dir" -name 'tried-*' | wc -l)" -ge "$jobs" ]; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || break
    sleep 0.1
done
got=$("$pstcp" connect 127.0.0.1 "$vport")
echo "$got" >"$dir/got-$id"
[ "$got" = "ok job-$id" ]
