#!/bin/sh
# SPDX-License-Identifier: MIT
# registry_folder.sh - PORTSHIM_REGISTRY names the registry and its
# folder: the default mapping files of `portshim run` go next to it, so
# two registries with the same group name never share a mapping file;
# and a relative PORTSHIM_REGISTRY (another file in every working
# directory) is refused with one line by every command and by the shim.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

P=$(free_port 44000 44999)
G=same-$$

# wait_file FILE: true once FILE exists (a bound for hangs, 20 s).
wait_file() {
    wf_n=200
    while [ ! -e "$1" ] && [ "$wf_n" -gt 0 ]; do
        sleep 0.1
        wf_n=$((wf_n - 1))
    done
    [ -e "$1" ]
}

# ------------------------------------------- mapping files per registry
mkdir -m 700 "$T/one" "$T/two"
# Group $G under the first registry: binds P, says where its mapping file
# is, and holds the group until told to stop.
# shellcheck disable=SC2016 # expanded by the inner shell
bg "$T/a.log" env PORTSHIM_REGISTRY="$T/one/registry" \
    "$PORTSHIM" run --ports "$P" --group "$G" -- sh -c '
        "$1" listen 127.0.0.1 "$2" >"$3/a.listen" &
        while ! grep -q listening "$3/a.listen" 2>/dev/null; do
            sleep 0.05
        done
        echo "$PORTSHIM_MAP_FILE" >"$3/a.path"
        while [ ! -e "$3/a.stop" ]; do sleep 0.05; done
        kill $!
        wait $! || true' sh "$PSTCP" "$P" "$T"
apid=$ps_last_pid
apath=
if wait_file "$T/a.path"; then
    apath=$(cat "$T/a.path")
    is "$apath" "$T/one/$G.map" \
        "the default mapping file is in the registry's folder"
else
    not_ok "the first group started within 20 s"
    diag_file "$T/a.log"
fi
areal=$(map_real "$apath" tcp "$P")
check "it holds the group's lease ($P -> ${areal:-none})" test -n "$areal"

# The same group name under a second registry, run to its end meanwhile.
st=0
# shellcheck disable=SC2016 # expanded by the inner shell
env PORTSHIM_REGISTRY="$T/two/registry" \
    "$PORTSHIM" run --ports "$P" --group "$G" -- sh -c '
        "$1" bind 127.0.0.1 "$2" >/dev/null
        echo "$PORTSHIM_MAP_FILE" >"$3/b.path"
        cp "$PORTSHIM_MAP_FILE" "$3/b.map"' sh "$PSTCP" "$P" "$T" \
    >"$T/b.log" 2>&1 || st=$?
is "$st" 0 "the same group under a second registry runs"
is "$(cat "$T/b.path" 2>/dev/null)" "$T/two/$G.map" \
    "its mapping file is in the second registry's folder"
check "it held its own lease" test -n "$(map_real "$T/b.map" tcp "$P")"
check "and is gone when that run ended" test ! -e "$T/two/$G.map"
is "$(map_real "$apath" tcp "$P")" "${areal:-none}" \
    "the first group's mapping file is still there, unchanged"
: >"$T/a.stop"
# The server is reaped before CMD ends, so the group ends with CMD and run
# releases it before it exits (a bound for hangs only: 120 s).
if wait_exit "$apid" 120; then
    check "and is gone when the first run ends" test ! -e "$T/one/$G.map"
else
    not_ok "the first run ended within 120 s of being told to stop"
    diag_file "$T/a.log"
fi

# ------------------------------------------- a relative PORTSHIM_REGISTRY
mkdir "$T/cwd"
# refused DESC CMD...: run in $T/cwd with PORTSHIM_REGISTRY=rel, CMD exits
# 2 with one line naming the variable, and makes no file there.
refused() {
    rf_desc=$1
    shift
    rf_st=0
    # (timeout: a command that does not refuse may serve forever)
    (cd "$T/cwd" && env PORTSHIM_REGISTRY=rel timeout 20 "$@") \
        >"$T/out" 2>"$T/err" </dev/null || rf_st=$?
    if [ "$rf_st" = 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
        grep -q "^portshim: PORTSHIM_REGISTRY: 'rel' is a relative path" \
            "$T/err" && [ -z "$(ls -A "$T/cwd")" ]; then
        ok "$rf_desc refuses a relative PORTSHIM_REGISTRY"
    else
        not_ok "$rf_desc refuses a relative PORTSHIM_REGISTRY"
        diag "exit status $rf_st, want 2; stderr:"
        diag_file "$T/err"
        diag "files: $(ls -A "$T/cwd")"
    fi
}
refused "run" "$PORTSHIM" run true
refused "supervise" "$PORTSHIM" supervise true
refused "port" "$PORTSHIM" port --group g 8080
refused "wait" "$PORTSHIM" wait --group g --timeout 1 8080
refused "ls" "$PORTSHIM" ls
refused "who" "$PORTSHIM" who 8080
refused "gc" "$PORTSHIM" gc
refused "gc --reset" "$PORTSHIM" gc --reset
refused "doctor" "$PORTSHIM" doctor
refused "pick" "$PORTSHIM" pick
refused "release" "$PORTSHIM" release 20000
refused "portserver" "$PORTSHIM" portserver --address "@ps-test-$$"

st=0
(cd "$T/cwd" && env PORTSHIM_REGISTRY=rel "$PORTSHIM" ls --help) \
    >"$T/out" 2>"$T/err" || st=$?
is "$st" 0 "a command's --help still works"

# The shim: one line naming the variable; the program runs on (with the
# default registry, which this untagged connect never opens).
Q=$(free_port 45000 45999)
st=0
(cd "$T/cwd" && with_shim env PORTSHIM_REGISTRY=rel PORTSHIM_PORTS="$P" \
    "$PSTCP" connect 127.0.0.1 "$Q") >"$T/out" 2>"$T/err" || st=$?
is "$(cat "$T/out")" ECONNREFUSED "under the shim the program runs on"
is "$(grep -c "^portshim\[[0-9]*\]: PORTSHIM_REGISTRY: 'rel' is a relative" \
    "$T/err")" 1 "with one line naming PORTSHIM_REGISTRY"
is "$(ls -A "$T/cwd")" "" "and no registry file in the working directory"

done_testing
