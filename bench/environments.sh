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

# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
bench_jdk environments.sh

# Maven skips what is up to date, so building every time costs little and never measures a stale jar.
(cd "$ROOT" && ./mvnw -q -B -DskipTests -DskipITs -pl cli,bench -am package)
VEGGUR_DOCKER_HOST=$("$ROOT/container/dockerd.sh" start | tail -n 1)
VEGGUR_IMAGE=$("$ROOT/container/build-image.sh" "$ROOT/cli/target/veggur.jar" | tail -n 1)
VEGGUR_GUEST_DIR=$("$ROOT/guest/build.sh" | tail -n 1)
export VEGGUR_DOCKER_HOST VEGGUR_IMAGE VEGGUR_GUEST_DIR

exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -cp "$ROOT/bench/target/benchmarks.jar" io.veggur.bench.EnvironmentBenchmark "$ROOT/cli/target/veggur.jar" "$@"
