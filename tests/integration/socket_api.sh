#!/bin/sh
# SPDX-License-Identifier: MIT
# socket_api.sh - the socket calls portshim rewrites, checked call by call
# from inside a program under `portshim run` (tests/helpers/psapi.c):
# UDP sendto/sendmsg/sendmmsg and what recvfrom/recvmsg/recvmmsg report;
# accept/accept4/getpeername/getsockname; EINPROGRESS, errno, __connect,
# MSG_FASTOPEN, short lengths and buffers, AF_UNSPEC, read-only
# addresses, interface addresses; IPv4, IPv6 V6ONLY and dual-stack
# binds of one virtual port agree; SO_REUSEPORT threads share a port;
# Multipath TCP servers and clients are moved as TCP's.
# Each part runs at once, in a group of its own; the real ports come from
# a range of this test's own, away from the tests running beside it.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=checks.sh
. "$(dirname "$0")/checks.sh"

PSAPI=$PS_HELPERS/psapi
[ -x "$PSAPI" ] || bail_out "helper $PSAPI is missing (run through make check)"

parts="udp tcp dual reuseport mptcp"
for part in $parts; do
    checks_start "$part" "$PORTSHIM" run --ports 5300-5309,8080-8089 \
        --range 18000-18199 --group "api-$part" --map "$T/api-$part.map" \
        -- "$PSAPI" "$part"
done
for part in $parts; do
    checks_report "$part"
done

done_testing
