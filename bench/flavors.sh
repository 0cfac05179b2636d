#!/usr/bin/env bash
# The paper's figure 4 across every flavor, plus deployment time per environment flavor, in one run through an
# in-process agent with a throw-away home (see bench/src/main/java/io/veggur/bench/FlavorBenchmark.java):
#   process lists - `veggur vmi bench` (process lists, every cache flushed before each) as Native (host, descriptor),
#                   NativeSocket (host, --no-descriptor), FromDocker (container), Virtio (monitoring VM, TCG),
#                   NetCoHost (mutual TLS from a network namespace) and NetRemote (the same through a delay line),
#                   alternated round by round; each as a ratio to Native and to NativeSocket
#   deployment    - PUT environment until `veggur vmi info` exits 0 through it, per environment flavor
# Usage: bench/flavors.sh [ROUNDS [OPTIONS...]]   (default 5 rounds). Run as root (QEMU, dockerd, ip netns).
# OPTIONS (defaults): --lists 5000 (Native, NativeSocket, FromDocker)  --vm-lists 200  --net-lists 5000
#   --remote-lists 2000  --delay-us 250 (each way; 0 allowed)  --deploy-rounds 5  --vm-deploy-rounds 3
#   --flavors Native,NativeSocket,FromDocker,Virtio,NetCoHost,NetRemote (Native is always run: the baseline)
#   --jit tiered|c1 (list runs: full tiered compilation, or the image launcher's C1-only flags, which make TLS ~5x
#   slower: the JDK's AES-GCM intrinsics are C2's)
# A quick check: bench/flavors.sh 1 --lists 100 --vm-lists 5 --net-lists 100 --remote-lists 100 --deploy-rounds 1 \
#   --vm-deploy-rounds 1
# Progress goes to stderr, the markdown report to stdout. Namespaces vgb-co (10.233.1.0/24) and vgb-re
# (10.233.2.0/24) exist during the run; the agent's network endpoints listen on every interface (mutual TLS).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "flavors.sh: run as root (the agent runs VMs, the private dockerd and namespaces)" >&2; exit 1; }

# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
bench_jdk flavors.sh
command -v ip >/dev/null || { echo "flavors.sh: iproute2 (ip) is needed for the network namespaces" >&2; exit 1; }

# Maven skips what is up to date, so building every time costs little and never measures a stale jar.
(cd "$ROOT" && ./mvnw -q -B -DskipTests -DskipITs -pl cli,bench -am package)
# Copies of the jars, the tools image (pinned) and the guest; the monitoring VM image is built from the same copy,
# so host, container and monitoring VM run the same bytes. The benchmark itself removes its environments, VMs,
# namespaces, agent and home (also on Ctrl-C, through its shutdown hook).
bench_stage flavors "$ROOT/cli/target/veggur.jar" "$ROOT/bench/target/benchmarks.jar"
# Without the monitoring VM image the agent does not offer the vm flavor, and the report says Virtio is unavailable.
if VEGGUR_MONITOR_IMAGE=$("$ROOT/monitor/build-image.sh" "$STAGE/veggur.jar" | tail -n 1) && [ -d "$VEGGUR_MONITOR_IMAGE" ]; then
  export VEGGUR_MONITOR_IMAGE
else
  echo "flavors.sh: the monitoring VM image did not build; Virtio will be reported as unavailable" >&2
  unset VEGGUR_MONITOR_IMAGE
fi

# Not exec: bench_stage's exit trap must still remove the copies and the pin when Java is done.
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -cp "$STAGE/benchmarks.jar" io.veggur.bench.FlavorBenchmark "$STAGE/veggur.jar" "$@"
