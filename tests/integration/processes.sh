#!/bin/sh
# SPDX-License-Identifier: MIT
# processes.sh - the shim in real process trees (tests/helpers/psproc.c):
# fork (the first shim call in a child; children of a busy
# multi-threaded parent; a server restarted in a live group gets its
# real port back), exec with a rebuilt environment through execve,
# posix_spawn and vfork, 16 threads binding and connecting at once,
# signal handlers calling connect and sendto while the main thread is in
# the shim, and SO_REUSEPORT worker processes. Each part runs at once, in
# a group of its own; the real ports come from a range of this test's
# own, away from the tests running beside it.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=checks.sh
. "$(dirname "$0")/checks.sh"

PSPROC=$PS_HELPERS/psproc
[ -x "$PSPROC" ] ||
    bail_out "helper $PSPROC is missing (run through make check)"

parts="fork exec threads signals reuseport"
for part in $parts; do
    checks_start "$part" "$PORTSHIM" run --ports 8080-8099,9000-9015 \
        --range 18200-18399 --group "proc-$part" \
        --map "$T/proc-$part.map" -- "$PSPROC" "$part"
done
for part in $parts; do
    checks_report "$part"
done

done_testing
