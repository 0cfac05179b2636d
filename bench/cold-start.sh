#!/usr/bin/env bash
# Whole-process time of `veggur vmi ps --image` (JVM start, discovery, listing), cold, as a user runs it through
# ./veggur (C1, serial GC, AppCDS archive). Two modes, interleaved run by run so machine noise hits both alike:
#   cached  - the profile of this kernel is in the profile cache (the second and later runs)
#   full    - --no-profile-cache: kallsyms scan, BTF parse, everything from guest memory
# Usage: bench/cold-start.sh [IMAGE] [RUNS]. Without IMAGE it boots the test guest and images its 256 MiB.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${1:-}
RUNS=${2:-20}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export VEGGUR_HOME="$WORK/home"

if [ -z "$IMAGE" ]; then
  IMAGE="$WORK/guest.raw"
  "$ROOT/veggur" vm start coldstart >/dev/null
  console="$VEGGUR_HOME/vms/coldstart/console.log"
  for _ in $(seq 600); do grep -q VEGGUR-READY "$console" 2>/dev/null && break; sleep 0.1; done
  "$ROOT/veggur" vmi read --vm coldstart --physical 0 --length 256M --out "$IMAGE"
  "$ROOT/veggur" vm stop coldstart >/dev/null
fi

"$ROOT/veggur" vmi ps --image "$IMAGE" >/dev/null   # fills the profile cache and the CDS archive
ms() { local start end; start=$(date +%s%N); "$ROOT/veggur" vmi ps --image "$IMAGE" "$@" >/dev/null; end=$(date +%s%N); echo $(((end - start) / 1000000)); }
cached=(); full=()
for _ in $(seq "$RUNS"); do cached+=("$(ms)"); full+=("$(ms --no-profile-cache)"); done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
printf 'runs %d, image %s (%d MiB), %d tasks\n' "$RUNS" "$IMAGE" $(($(stat -c %s "$IMAGE") >> 20)) \
  "$("$ROOT/veggur" vmi ps --image "$IMAGE" --json | grep -c '"pid"')"
printf 'cached profile: median %s ms, min %s ms\n' "$(median "${cached[@]}")" "$(printf '%s\n' "${cached[@]}" | sort -n | head -1)"
printf 'full discovery: median %s ms, min %s ms\n' "$(median "${full[@]}")" "$(printf '%s\n' "${full[@]}" | sort -n | head -1)"
