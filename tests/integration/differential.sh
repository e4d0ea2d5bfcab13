#!/bin/sh
# SPDX-License-Identifier: MIT
# differential.sh - one program, two front ends, the same results. The
# scenarios of tests/helpers/psdiff.c (TCP over IPv4, the wildcard, IPv6
# and a v4-mapped address; an untagged port; UDP with sendto, sendmsg,
# sendmmsg and connect+send; TCP sendto with and without MSG_FASTOPEN;
# port 0; what getsockname, getpeername, accept and recvfrom report) run
# once linked statically under `portshim run --supervise` (only the
# supervisor sees it) and once linked dynamically under `portshim run`
# (the preload does), and print the same lines. The one documented
# difference (README, limits): the source of a datagram that a supervised
# program receives is not turned back to its virtual port.
# The cases that need another host or this host's own address (a peer on
# another host, a connect to an address of this host) are in
# supervise.sh, each run both ways too.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

CC=${CC:-cc}
TPORT=7170
UPORT=7171
OTHER=7172
UNUSED=7173
LO=23100
HI=23199

if ! "$PORTSHIM" run --supervise -- true 2>"$T/probe.err"; then
    skip_all "--supervise cannot run here: $(head -n 1 "$T/probe.err")"
fi
if ! "$CC" -static -O2 -o "$T/psdiff-static" \
    "$PS_SRCDIR/tests/helpers/psdiff.c" 2>"$T/cc.err"; then
    skip_all "cannot link a static program ($CC -static): $(head -n 1 "$T/cc.err")"
fi
"$CC" -O2 -o "$T/psdiff" "$PS_SRCDIR/tests/helpers/psdiff.c" ||
    bail_out "cannot build tests/helpers/psdiff.c"

# Each arm in a network namespace of its own where there is one, so that
# no port of this host (nor a TIME_WAIT of the other arm) is in the way.
NS=""
if command -v ip >/dev/null 2>&1 && unshare -rn true 2>/dev/null; then
    NS="unshare -rn"
fi
arm() {
    # shellcheck disable=SC2086 # $NS: a command and its options, or none
    $NS sh -c 'command -v ip >/dev/null 2>&1 && ip link set lo up
        exec "$@"' sh "$PORTSHIM" run --ports "$TPORT,$UPORT,$UNUSED" \
        --range "$LO-$HI" "$@" || true
}
arm --supervise -- "$T/psdiff-static" "$TPORT" "$UPORT" "$OTHER" \
    "$UNUSED" "$LO" "$HI" >"$T/supervised" 2>"$T/supervised.err"
arm -- "$T/psdiff" "$TPORT" "$UPORT" "$OTHER" "$UNUSED" "$LO" "$HI" \
    >"$T/preloaded" 2>"$T/preloaded.err"

n=$(wc -l <"$T/preloaded" | tr -d ' ')
is "$n" 13 "the preloaded program ran its 13 scenarios"
check "each tagged TCP scenario shows the virtual port everywhere" \
    test "$(grep -c "^tcp.*: server $TPORT, client peer $TPORT, client eph, accepted $TPORT from eph\$" "$T/preloaded")" -eq 4
sed 's/, answer pong from [^ ]*$//' "$T/supervised" >"$T/supervised.cut"
sed 's/, answer pong from [^ ]*$//' "$T/preloaded" >"$T/preloaded.cut"
if cmp -s "$T/supervised.cut" "$T/preloaded.cut"; then
    ok "supervised and preloaded: the same results, scenario by scenario"
else
    not_ok "supervised and preloaded: the same results, scenario by scenario"
    diff "$T/preloaded" "$T/supervised" | sed 's/^/# /'
fi
is "$(grep -c "^udp [a-z]*: .*answer pong from $UPORT\$" "$T/preloaded")" 4 \
    "preloaded: a tagged UDP server's answer comes from its virtual port"
is "$(grep -c '^udp [a-z]*: .*answer pong from real$' "$T/supervised")" 4 \
    "supervised: it comes from the real port (README: limits)"
diag_file "$T/supervised.err"
diag_file "$T/preloaded.err"

done_testing
