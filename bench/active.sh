#!/usr/bin/env bash
# Active introspection after the paper's figure 5 (issue 6), through an in-process agent with a throw-away home:
#   getpid  - the guest's getpid loop unmonitored and with `veggur vmi break __x64_sys_getpid` running
#   pi      - `veggur-pi DIGITS` unmonitored and with `veggur vmi trace sched` running
#   event   - the event round trip: the time N breakpoint events add to the loop, divided by N
# each monitored run in the four flavors, all with role trace: native (host subprocess on the VM's own socket),
# container (exec through the API), vm (exec through the API in a monitoring VM, TCG here, on the serial link) and
# network (host subprocess on the network environment's mutual-TLS endpoint on loopback), in interleaved rounds, so
# machine noise hits all alike. See bench/src/main/java/io/veggur/bench/ActiveBenchmark.java.
# Usage: bench/active.sh [ROUNDS [GETPID_CALLS [PI_DIGITS]]]   (default 3, 1000, 1000: 15-20 minutes). Run as root
# (QEMU, dockerd).
#   A quick check: bench/active.sh 1 300 500
# Environment:
#   VEGGUR_ACTIVE_PAUSES=vm=60,network=10   getpid's pause and pi's sleep to arm, per flavor, in seconds (default: from
#                                           a probe per flavor)
#   VEGGUR_ACTIVE_JIT=tiered                the tools' JIT: c1 (default, the image launcher's flags) or tiered
#   VEGGUR_CLI_JAR=... VEGGUR_BENCH_JAR=... use these jars instead of building (both or neither): on a shared tree,
#                                           rebuilding cli/target/veggur.jar breaks VMs and agents started from it
# Progress goes to stderr, the markdown report to stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "active.sh: run as root (the agent runs VMs and the private dockerd)" >&2; exit 1; }

# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
bench_jdk active.sh

if [ -n "${VEGGUR_CLI_JAR:-}${VEGGUR_BENCH_JAR:-}" ]; then
  [ -f "${VEGGUR_CLI_JAR:-}" ] && [ -f "${VEGGUR_BENCH_JAR:-}" ] \
    || { echo "active.sh: VEGGUR_CLI_JAR and VEGGUR_BENCH_JAR must both name jars" >&2; exit 1; }
  CLI_JAR=$VEGGUR_CLI_JAR BENCH_JAR=$VEGGUR_BENCH_JAR
else
  # Maven skips what is up to date, so building every time costs little and never measures a stale jar.
  (cd "$ROOT" && ./mvnw -q -B -DskipTests -DskipITs -pl cli,bench -am package)
  CLI_JAR=$ROOT/cli/target/veggur.jar BENCH_JAR=$ROOT/bench/target/benchmarks.jar
fi
# Copies of the jars, the tools image (pinned) and the guest; the monitoring VM image is built from the same copy,
# so host, container and monitoring VM run the same bytes. The benchmark itself removes its environments, VMs, agent
# and home (also on Ctrl-C, through its shutdown hook).
bench_stage active "$CLI_JAR" "$BENCH_JAR"
VEGGUR_MONITOR_IMAGE=$("$ROOT/monitor/build-image.sh" "$STAGE/veggur.jar" | tail -n 1)
[ -d "$VEGGUR_MONITOR_IMAGE" ] || { echo "active.sh: monitor/build-image.sh left no image directory" >&2; exit 1; }
export VEGGUR_MONITOR_IMAGE

# Not exec: bench_stage's exit trap must still remove the copies and the pin when Java is done.
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -cp "$STAGE/benchmarks.jar" io.veggur.bench.ActiveBenchmark "$STAGE/veggur.jar" "$@"
