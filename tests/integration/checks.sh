# shellcheck shell=sh
# SPDX-License-Identifier: MIT
# checks.sh - runs the C test helpers (psapi, psproc; see
# tests/helpers/psh.h) and relays their check lines to TAP through
# lib.sh. Source it after lib.sh.
#
#   checks_start NAME CMD...   starts CMD (a helper under portshim run) in
#                              the background; NAME is [a-z0-9_]+
#   checks_report NAME         waits for it and reports its checks
#
# Helpers print "ok - DESC", "not ok - DESC", "skip - REASON - DESC",
# "# diagnostics" and, last, "done N". A helper that dies before "done"
# (a crash, or a hang ended by the 120 s timeout) is a failure, shown
# with its whole output.

# checks_start NAME CMD...
checks_start() {
    cs_name=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        bg "$T/checks-$cs_name.log" timeout 120 "$@"
    else
        bg "$T/checks-$cs_name.log" "$@"
    fi
    eval "checks_pid_$cs_name=\$ps_last_pid"
}

# checks_report NAME
checks_report() {
    cr_name=$1
    eval "cr_pid=\$checks_pid_$cr_name"
    cr_status=0
    # shellcheck disable=SC2154 # set by eval above
    wait "$cr_pid" || cr_status=$?
    cr_done=""
    while IFS= read -r cr_line; do
        case $cr_line in
        'ok - '*) ok "$cr_name: ${cr_line#ok - }" ;;
        'not ok - '*) not_ok "$cr_name: ${cr_line#not ok - }" ;;
        'skip - '*)
            cr_rest=${cr_line#skip - }
            skip "${cr_rest%% - *}" "$cr_name: ${cr_rest#* - }"
            ;;
        'done '*) cr_done=${cr_line#done } ;;
        '# '*) echo "$cr_line" ;;
        esac
    done <"$T/checks-$cr_name.log"
    if [ -z "$cr_done" ]; then
        not_ok "$cr_name: the helper ran to its end (status $cr_status)"
        diag_file "$T/checks-$cr_name.log"
    elif [ "$cr_status" -ne 0 ]; then
        diag "$cr_name: exit status $cr_status; its output:"
        diag_file "$T/checks-$cr_name.log"
    fi
}
