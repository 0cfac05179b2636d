# Sourced (bash) by the benchmark scripts in bench/. The caller sets ROOT (the checkout) and `set -euo pipefail`.

# bench_jdk NAME: exports JAVA_HOME, found as ./veggur finds it (JAVA_HOME if it is 25 or newer, else the first one
# under /usr/lib/jvm); NAME prefixes the error.
bench_jdk() {
  local candidate
  jdk_at_least_25() { [ -x "$1/bin/java" ] && grep -qE '^JAVA_VERSION="(2[5-9]|[3-9][0-9])' "$1/release" 2>/dev/null; }
  if [ -z "${JAVA_HOME:-}" ] || ! jdk_at_least_25 "$JAVA_HOME"; then
    for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
      jdk_at_least_25 "$candidate" && [ -x "$candidate/bin/javac" ] && { export JAVA_HOME="$candidate"; break; }
    done
  fi
  jdk_at_least_25 "${JAVA_HOME:-}" || { echo "$1: a JDK 25 or newer is needed" >&2; exit 1; }
}

# bench_stage NAME CLI_JAR BENCH_JAR: for runs that take many minutes. Copies both jars to STAGE (a rebuild meanwhile
# cannot change them under the run), starts the private dockerd, builds the tools image from the copy (so host and
# container run the same bytes) and pins it with a created, never started container (container/build-image.sh keeps
# only the newest few tools images no container uses, and a run outlasts many builds elsewhere), builds
# the test guest, and exports VEGGUR_DOCKER_HOST, VEGGUR_IMAGE, VEGGUR_GUEST_DIR. Copies and pin are removed on exit,
# so the caller runs Java without exec.
bench_stage() {
  local name=$1
  STAGE=$(mktemp -d "/tmp/veggur-$name-XXXXXX")
  BENCH_PIN=
  trap 'bench_unstage' EXIT
  cp "$2" "$STAGE/veggur.jar"
  cp "$3" "$STAGE/benchmarks.jar"
  VEGGUR_DOCKER_HOST=$("$ROOT/container/dockerd.sh" start | tail -n 1)
  VEGGUR_IMAGE=$("$ROOT/container/build-image.sh" "$STAGE/veggur.jar" | tail -n 1)
  BENCH_PIN=$(docker --host "$VEGGUR_DOCKER_HOST" create --network none --name "veggur-$name-pin-$$" "$VEGGUR_IMAGE" true)
  VEGGUR_GUEST_DIR=$("$ROOT/guest/build.sh" | tail -n 1)
  export VEGGUR_DOCKER_HOST VEGGUR_IMAGE VEGGUR_GUEST_DIR
}

bench_unstage() {
  [ -z "${BENCH_PIN:-}" ] || docker --host "$VEGGUR_DOCKER_HOST" rm -f "$BENCH_PIN" >/dev/null 2>&1 || true
  rm -rf "$STAGE"
}
