#!/bin/sh
# SPDX-License-Identifier: MIT
# io_uring.sh - a wrapped program that sets up an io_uring through
# syscall() (as io_uring libraries may) is told once, in one line, that
# what it submits there escapes portshim, as for a program the preload
# cannot see; PORTSHIM_BYPASS=ignore silences it, PORTSHIM_BYPASS=fail
# makes io_uring_setup fail with ENOSYS (the program falls back to plain
# system calls), and an untagged program hears nothing.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSRAW=$PS_HELPERS/psraw
WARN="portshim\\[[0-9]+\\]: .*warning: this program sets up an io_uring \\(io_uring_setup\\)"

# Whether the kernel allows io_uring here (kernel.io_uring_disabled,
# seccomp profiles of containers): without the shim.
native=$("$PSRAW" uring 1 2>/dev/null || true)

got=$(capture "$PORTSHIM" run --ports 8080 -- "$PSRAW" uring 3 | tr '\n' ' ')
cp "$T/.capture.err" "$T/warn.err"
is "$got" "$native $native $native " \
    "the wrapped program's io_uring_setup runs as without portshim ($native)"
is "$(grep -cE "$WARN" "$T/warn.err")" 1 \
    "one warning line, however many rings it sets up"
like "$T/warn.err" "$WARN.*portshim run --supervise.*PORTSHIM_BYPASS=ignore" \
    "which says what to do"
is "$(grep -c . "$T/warn.err")" 1 "and nothing else"

capture env PORTSHIM_BYPASS=ignore "$PORTSHIM" run --ports 8080 -- \
    "$PSRAW" uring 1 >/dev/null
is "$(grep -c . "$T/.capture.err")" 0 "PORTSHIM_BYPASS=ignore: no line"

got=$(capture env PORTSHIM_BYPASS=fail "$PORTSHIM" run --ports 8080 -- \
    "$PSRAW" uring 2 | tr '\n' ' ')
cp "$T/.capture.err" "$T/fail.err"
is "$got" "ENOSYS ENOSYS " \
    "PORTSHIM_BYPASS=fail: io_uring_setup fails with ENOSYS"
is "$(grep -cE "$WARN.*PORTSHIM_BYPASS=fail" "$T/fail.err")" 1 \
    "with one line saying so"

# The shim loaded but no port tagged: the program is not portshim's.
got=$(capture with_shim "$PSRAW" uring 1)
is "$got:$(grep -c . "$T/.capture.err")" "$native:0" \
    "without PORTSHIM_PORTS, nothing is said or changed"

done_testing
