#!/usr/bin/env bash
# The container flavor end to end (issue 4), through an in-process agent with a throw-away home:
#   deployment  - PUT environment, then `veggur vmi info` exec'd in it: "from request to the VMI tool connected"
#   ps ratio    - `veggur vmi bench` (process lists, caches flushed) in the container and natively, alternated run by
#                 run so machine noise hits both alike; reported as container / native
# Usage: bench/environments.sh [DEPLOY_ROUNDS [LIST_ROUNDS]]   (default 10 and 5). Run as root (QEMU, dockerd).
# Progress goes to stderr, the markdown report to stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "environments.sh: run as root (the agent runs VMs and the private dockerd)" >&2; exit 1; }

# The JDK, found as ./veggur finds it: JAVA_HOME if it is 25 or newer, else the first one under /usr/lib/jvm.
jdk_at_least_25() { [ -x "$1/bin/java" ] && grep -qE '^JAVA_VERSION="(2[5-9]|[3-9][0-9])' "$1/release" 2>/dev/null; }
if [ -z "${JAVA_HOME:-}" ] || ! jdk_at_least_25 "$JAVA_HOME"; then
  for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    jdk_at_least_25 "$candidate" && [ -x "$candidate/bin/javac" ] && { export JAVA_HOME="$candidate"; break; }
  done
fi
jdk_at_least_25 "${JAVA_HOME:-}" || { echo "environments.sh: a JDK 25 or newer is needed" >&2; exit 1; }

# Maven skips what is up to date, so building every time costs little and never measures a stale jar.
(cd "$ROOT" && ./mvnw -q -B -DskipTests -DskipITs -pl cli,bench -am package)
VEGGUR_DOCKER_HOST=$("$ROOT/container/dockerd.sh" start | tail -n 1)
VEGGUR_IMAGE=$("$ROOT/container/build-image.sh" "$ROOT/cli/target/veggur.jar" | tail -n 1)
VEGGUR_GUEST_DIR=$("$ROOT/guest/build.sh" | tail -n 1)
export VEGGUR_DOCKER_HOST VEGGUR_IMAGE VEGGUR_GUEST_DIR

exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -cp "$ROOT/bench/target/benchmarks.jar" io.veggur.bench.EnvironmentBenchmark "$ROOT/cli/target/veggur.jar" "$@"
