#!/bin/sh
# SPDX-License-Identifier: MIT
# matrix_java.sh - four copies of a Java server doing
# `new ServerSocket(9000)` (compiled here with javac), each answering
# with its own text; each group's Java client (v4-mapped IPv6 socket)
# reaches its own copy, and each server's getLocalPort() says 9000.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=matrix.sh
. "$(dirname "$0")/matrix.sh"

need javac default-jdk-headless
need java default-jre-headless
MATRIX=java
PORTS=9000
RANGE=18800-18899
# Small, quick JVMs: the test starts eight of them. No hsperfdata file:
# a JVM whose pid matches a file left by another JVM prints a warning on
# its standard output, which the checks read.
JAVA_OPTS="-Xmx64m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData"

mkdir -p "$T/classes"
SRC=$PS_SRCDIR/tests/integration/data/java/PortServer.java
if ! javac -d "$T/classes" "$SRC" >"$T/javac.log" 2>&1; then
    not_ok "javac compiles PortServer.java"
    diag_file "$T/javac.log"
    done_testing
fi
ok "javac compiles PortServer.java"

for i in $COPIES; do
    # shellcheck disable=SC2086 # JAVA_OPTS is a list of options
    serve "$i" java $JAVA_OPTS -cp "$T/classes" PortServer serve "java-copy-$i"
done
wait_copies 9000

for i in $COPIES; do
    n=100
    while [ "$n" -gt 0 ] && ! grep -q listening "$T/java-$i.log"; do
        sleep 0.1
        n=$((n - 1))
    done
    is "$(grep listening "$T/java-$i.log")" "listening 9000" \
        "copy $i: ServerSocket.getLocalPort() is 9000"
done

# shellcheck disable=SC2317 # called through expect_each
get() {
    # shellcheck disable=SC2086
    in_group "$1" java $JAVA_OPTS -cp "$T/classes" PortServer get
}
expect_each "its Java client gets its own copy from 127.0.0.1:9000" \
    java-copy get

done_testing
