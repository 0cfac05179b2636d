#!/usr/bin/env bash
# Active introspection after the paper's figure 5 (issue 6), through an in-process agent with a throw-away home:
#   getpid  - the guest's getpid loop unmonitored and with `veggur vmi break __x64_sys_getpid` running
#   pi      - `veggur-pi DIGITS` unmonitored and with `veggur vmi trace sched` running
#   event   - the event round trip: the time N breakpoint events add to the loop, divided by N
# each monitored run natively (host subprocess on the VM's own socket) and in a container environment (role trace),
# in interleaved rounds, so machine noise hits both alike. See bench/src/main/java/io/veggur/bench/ActiveBenchmark.java.
# Usage: bench/active.sh [ROUNDS [GETPID_CALLS [PI_DIGITS]]]   (default 3, 2000, 2000). Run as root (QEMU, dockerd).
# Progress goes to stderr, the markdown report to stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "active.sh: run as root (the agent runs VMs and the private dockerd)" >&2; exit 1; }

# The JDK, found as ./veggur finds it: JAVA_HOME if it is 25 or newer, else the first one under /usr/lib/jvm.
jdk_at_least_25() { [ -x "$1/bin/java" ] && grep -qE '^JAVA_VERSION="(2[5-9]|[3-9][0-9])' "$1/release" 2>/dev/null; }
if [ -z "${JAVA_HOME:-}" ] || ! jdk_at_least_25 "$JAVA_HOME"; then
  for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    jdk_at_least_25 "$candidate" && [ -x "$candidate/bin/javac" ] && { export JAVA_HOME="$candidate"; break; }
  done
fi
jdk_at_least_25 "${JAVA_HOME:-}" || { echo "active.sh: a JDK 25 or newer is needed" >&2; exit 1; }

# Maven skips what is up to date, so building every time costs little and never measures a stale jar.
(cd "$ROOT" && ./mvnw -q -B -DskipTests -DskipITs -pl cli,bench -am package)
# The run takes minutes: it uses copies of the jars, so a rebuild meanwhile cannot change them under it. The image is
# built from the same copy, so host and container run the same bytes. Removed on any exit; the benchmark itself removes
# its environment, VM, agent and home (also on Ctrl-C, through its shutdown hook).
STAGE=$(mktemp -d /tmp/veggur-active-XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
cp "$ROOT/cli/target/veggur.jar" "$STAGE/veggur.jar"
cp "$ROOT/bench/target/benchmarks.jar" "$STAGE/benchmarks.jar"

VEGGUR_DOCKER_HOST=$("$ROOT/container/dockerd.sh" start | tail -n 1)
VEGGUR_IMAGE=$("$ROOT/container/build-image.sh" "$STAGE/veggur.jar" | tail -n 1)
VEGGUR_GUEST_DIR=$("$ROOT/guest/build.sh" | tail -n 1)
export VEGGUR_DOCKER_HOST VEGGUR_IMAGE VEGGUR_GUEST_DIR

# Not exec: the trap above must still remove the copies when Java is done.
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -cp "$STAGE/benchmarks.jar" io.veggur.bench.ActiveBenchmark "$STAGE/veggur.jar" "$@"
