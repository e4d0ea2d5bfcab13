#!/bin/sh
# SPDX-License-Identifier: MIT
# secure_mode.sh - in a setuid program (AT_SECURE) the shim ignores every
# PORTSHIM_* variable, as secure_getenv does: an unprivileged user must
# not be able to make a root program write files of the user's choosing
# (PORTSHIM_REGISTRY, PORTSHIM_LOG_FILE, PORTSHIM_MAP_FILE) or redirect
# its ports.
#
# The dynamic loader drops LD_PRELOAD for such programs anyway, so the
# shim is brought in the one way it still can be: the helper, copied and
# made setuid root, dlopen()s the library and calls its bind(). The same
# helper run normally shows that this path does rewrite the port; run by
# user 65534 through setpriv, it binds the port it asked for and creates
# nothing. Needs root (to make the setuid copy) and setpriv.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PSSTRESS=$PS_HELPERS/psstress
[ -n "${PORTSHIM_LIB:-}" ] || bail_out "PORTSHIM_LIB is not set"
[ "$(id -u)" = 0 ] || skip_all "needs root to make a setuid copy"
command -v setpriv >/dev/null 2>&1 || skip_all "setpriv is not installed"
if [ -n "${PORTSHIM_ASAN_RUNTIME:-}" ]; then
    skip_all "a sanitizer build: setuid copies of sanitized programs are not tried"
fi

# A folder user 65534 can reach, on a file system that honours setuid.
D=$T/suid
mkdir "$D"
chmod 755 "$T" "$D"
cp "$PSSTRESS" "$D/psstress"
chown 0:0 "$D/psstress"
chmod 4755 "$D/psstress"
cp "$PSTCP" "$D/pstcp"
chown 0:0 "$D/pstcp"
chmod 4755 "$D/pstcp"
P=$(free_port 45000 45999)

# The path works: run normally, the library's bind rewrites the port.
got=$(env PORTSHIM_PORTS=all PORTSHIM_GROUP=plain \
    PORTSHIM_REGISTRY="$T/plain.reg" "$D/psstress" secure "$PORTSHIM_LIB" \
    "$P" 2>"$T/plain.err" || true)
case $got in
"secure 0 port $P" | "" | error*)
    not_ok "without setuid, the dlopen'd shim rewrites port $P"
    diag "got '$got'"
    diag_file "$T/plain.err"
    ;;
"secure 0 port "*)
    ok "without setuid, the dlopen'd shim rewrites port $P (${got##* })"
    ;;
*)
    not_ok "without setuid, the dlopen'd shim rewrites port $P"
    diag "got '$got'"
    ;;
esac

# Setuid root, run by 65534: AT_SECURE, and the variables are ignored.
got=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    env PORTSHIM_PORTS=all PORTSHIM_GROUP=evil \
    PORTSHIM_REGISTRY="$D/evil.reg" PORTSHIM_LOG=debug \
    PORTSHIM_LOG_FILE="$D/evil.log" PORTSHIM_MAP_FILE="$D/evil.map" \
    "$D/psstress" secure "$PORTSHIM_LIB" "$P" 2>"$T/suid.err" || true)
case $got in
"secure 0 "*)
    skip_all "setuid programs do not run with AT_SECURE here ($got)"
    ;;
esac
is "$got" "secure 1 port $P" \
    "setuid, run by uid 65534: AT_SECURE, and port $P is not rewritten"
for f in evil.reg evil.log evil.map; do
    if [ -e "$D/$f" ]; then
        not_ok "no $f was created for the caller"
    else
        ok "no $f was created for the caller"
    fi
done
is "$(grep -c portshim "$T/suid.err" || true)" 0 "and nothing was logged"

# And the loader itself drops LD_PRELOAD for the setuid pstcp.
got=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    env LD_PRELOAD="$PORTSHIM_LIB" PORTSHIM_PORTS=all PORTSHIM_GROUP=evil \
    PORTSHIM_REGISTRY="$D/evil2.reg" "$D/pstcp" bind 127.0.0.1 "$P" \
    2>/dev/null || true)
is "$got" "$P" "a preloaded setuid program binds port $P as asked"
if [ -e "$D/evil2.reg" ]; then
    not_ok "and no registry was created for the caller"
else
    ok "and no registry was created for the caller"
fi

done_testing
