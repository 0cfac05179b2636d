#!/usr/bin/env bash
# Builds the VMI tools image offline and prints its tag (veggur-tools:<version>-<inputs hash>) as the last line.
#   container/build-image.sh JAR [--train-socket-dir DIR]
# JAR is the shaded CLI jar (cli/target/veggur.jar). With --train-socket-dir (a running VM's socket directory, as
# the environments mount it) the static AppCDS archive is trained on real runs (image/train: cold and warm `vmi ps`,
# info, kernel, ...); without it, on help texts and a failed connection (smaller start-up gain). An image whose
# inputs are unchanged is reused (~0.5 s); an offline-trained one is replaced when a training VM is given.
#
# The image (see container/README.md): /opt/veggur/jre (jlinked from $VEGGUR_IMAGE_JDK), /opt/veggur/veggur.jar,
# /opt/veggur/veggur.jsa (AppCDS, trained in the image's own paths), /opt/veggur/lib/libjunixsocket-native.so,
# /usr/local/bin/veggur, /usr/local/sbin/veggur-idle, busybox-static, and the glibc files the JRE needs (ldd).
# No package manager, no passwords, no SSH, no setuid or setgid file (checked).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JDK=${VEGGUR_IMAGE_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}
EPOCH=315532800   # every file in the image gets this mtime (1980-01-01): same inputs, same layer
KEEP_BUILDS=3      # tools images kept, this build included (as monitor/build-image.sh keeps boot images)

say() { printf 'veggur-image: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=jre.sh
. "$HERE/jre.sh"

JAR= TRAIN_DIR=
while [ $# -gt 0 ]; do
  case "$1" in
    --train-socket-dir) TRAIN_DIR=${2:?--train-socket-dir needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$JAR" ] || die "one JAR only"; JAR=$1; shift ;;
  esac
done
[ -n "$JAR" ] || die "usage: $0 JAR [--train-socket-dir DIR]"
[ -f "$JAR" ] || die "no such jar: $JAR (build it: ./mvnw -q -B -DskipTests -pl cli -am package)"
JAR=$(cd "$(dirname "$JAR")" && pwd)/$(basename "$JAR")
if [ -n "$TRAIN_DIR" ]; then
  [ -S "$TRAIN_DIR/vmi.sock" ] || die "no introspection socket at $TRAIN_DIR/vmi.sock"
  TRAIN_DIR=$(cd "$TRAIN_DIR" && pwd)
  MODE=vm
else
  MODE=offline
fi
[ "$(uname -m)" = x86_64 ] || die "only x86_64 hosts are supported (junixsocket's amd64 library is baked in)"
[ -x "$JDK/bin/jlink" ] && [ -x "$JDK/bin/jdeps" ] || die "no JDK with jlink/jdeps at $JDK (set VEGGUR_IMAGE_JDK)"

ensure_busybox
for t in sha256sum tar ldd flock; do command -v "$t" >/dev/null || die "$t is missing"; done

DOCKER_HOST=$("$HERE/dockerd.sh" start | tail -n 1)
export DOCKER_HOST DOCKER_BUILDKIT=0
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=$(command -v docker)

# ---- what goes in, and the tag derived from it ----------------------------------------------------------------
JAR_SHA=$(sha256sum <"$JAR" | cut -d' ' -f1)
MODULES=$(jre_modules "$JAR_SHA" "${VEGGUR_HOME:-/var/lib/veggur}/docker/image-modules")
HOST_LIBS=$(jre_host_libs)

VERSION=$("$BUSYBOX" unzip -p "$JAR" META-INF/maven/io.veggur/veggur-cli/pom.properties 2>/dev/null \
  | sed -n 's/^version=//p' | tr -cd 'A-Za-z0-9_.-')
VERSION=${VERSION:-unknown}
INPUTS=$(
  {
    echo "jar $JAR_SHA"
    grep -E '^(IMPLEMENTOR_VERSION|JAVA_RUNTIME_VERSION)=' "$JDK/release"
    echo "modules $MODULES"
    echo "busybox $(sha256sum <"$BUSYBOX")"
    for lib in $HOST_LIBS; do echo "lib $lib $(sha256sum <"$lib")"; done
    for f in "$0" "$HERE/jre.sh" "$HERE"/image/*; do echo "recipe $(basename "$f") $(sha256sum <"$f")"; done
  } | sha256sum | cut -c1-16
)
TAG="veggur-tools:$VERSION-$INPUTS"

have_image() {
  local trained
  trained=$("$DOCKER" image inspect --format '{{ index .Config.Labels "io.veggur.cds-training" }}' "$TAG" 2>/dev/null) || return 1
  [ "$trained" = vm ] || [ "$MODE" = offline ]
}

# Concurrent builds of the same inputs: one builds, the others wait and reuse.
mkdir -p "${VEGGUR_HOME:-/var/lib/veggur}/docker"
exec 8>>"${VEGGUR_HOME:-/var/lib/veggur}/docker/build.lock"
flock -w 600 8 || die "another image build holds the lock for 10 minutes"
if have_image; then
  say "reusing $TAG (inputs unchanged)"
  printf '%s\n' "$TAG"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/veggur-image.XXXXXX")
STAGE="veggur-tools-stage:$INPUTS"
cleanup() {
  "$DOCKER" image rm -f "$STAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ROOT=$WORK/rootfs CTX=$WORK/context
mkdir -p "$ROOT" "$CTX" "$WORK/out"
start=$SECONDS

# ---- rootfs --------------------------------------------------------------------------------------------------
say "jlink $MODULES"
jre_install "$ROOT" "$MODULES"

mkdir -p "$ROOT/usr/local/sbin"
busybox_install "$ROOT"
install -m 0755 "$HERE/image/veggur-idle" "$ROOT/usr/local/sbin/veggur-idle"
install -m 0755 "$HERE/image/train" "$ROOT/usr/local/sbin/veggur-train"   # stage image only

mkdir -p "$ROOT/etc" "$ROOT/tmp" "$ROOT/vmi" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
chmod 1777 "$ROOT/tmp"
# No passwords anywhere: '*' in passwd, no shadow file. Homes are /tmp (the only writable place).
cat >"$ROOT/etc/passwd" <<'EOF'
root:*:0:0:root:/tmp:/bin/sh
nobody:*:65534:65534:nobody:/tmp:/bin/false
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:*:0:
nogroup:*:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$ROOT/etc/nsswitch.conf"
printf '%s\n' "$TAG" >"$ROOT/etc/veggur-image"

chmod -R go-w "$ROOT/opt" "$ROOT/etc" "$ROOT/bin" "$ROOT/usr" "$ROOT/lib" "$ROOT/lib64"
suid=$(find "$ROOT" -perm /6000 -print)
[ -z "$suid" ] || die "setuid/setgid files in the image: $suid"

make_context() {
  (cd "$ROOT" && tar --numeric-owner --owner=0 --group=0 --sort=name --mtime="@$EPOCH" -cf "$CTX/rootfs.tar" .)
  cp "$HERE/image/Dockerfile" "$CTX/Dockerfile"
}

# ---- stage image, AppCDS training inside it, final image -----------------------------------------------------
make_context
say "building the stage image"
"$DOCKER" build -q --network none -t "$STAGE" "$CTX" >/dev/null

# Trained as the environments run: the socket directory read-only at /vmi, as the uid that owns it.
train_mount=() train_user=0:0
if [ "$MODE" = vm ]; then
  train_mount=(-v "$TRAIN_DIR:/vmi:ro")
  train_user=$(stat -c %u:%g "$TRAIN_DIR")
fi
chown "$train_user" "$WORK/out"
say "training the AppCDS archive ($MODE)"
set +e
"$DOCKER" run --rm --network none --ipc none --cap-drop ALL --security-opt no-new-privileges --read-only \
  --tmpfs /tmp:size=64m --user "$train_user" -v "$WORK/out:/out" "${train_mount[@]}" \
  "$STAGE" /usr/local/sbin/veggur-train "$MODE" >"$WORK/train.out" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] && [ -s "$WORK/out/veggur.jsa" ] || { cat "$WORK/train.out" >&2; die "AppCDS training failed (rc $rc)"; }
say "$(tail -n 1 "$WORK/train.out")"
install -m 0644 "$WORK/out/veggur.jsa" "$ROOT/opt/veggur/veggur.jsa"
rm "$ROOT/usr/local/sbin/veggur-train"

make_context
say "building $TAG"
"$DOCKER" build -q --network none --label "io.veggur.inputs=$INPUTS" --label "io.veggur.cds-training=$MODE" \
  -t "$TAG" "$CTX" >/dev/null

# The archive must map (-Xshare:on fails otherwise), the launcher must run, and nothing may be setuid.
check=$("$DOCKER" run --rm --network none --ipc none --cap-drop ALL --security-opt no-new-privileges --read-only \
  --tmpfs /tmp:size=64m "$TAG" sh -c '
    /opt/veggur/jre/bin/java -Xshare:on -XX:SharedArchiveFile=/opt/veggur/veggur.jsa --enable-native-access=ALL-UNNAMED \
      --sun-misc-unsafe-memory-access=allow -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xlog:aot=off -Xlog:cds=off \
      -jar /opt/veggur/veggur.jar --version >/dev/null || { echo "cds-unusable"; exit 1; }
    veggur --version || exit 1
    find / -xdev -perm /6000 | sed "s/^/setuid: /"' 2>&1) || die "the image does not work: $check"
case "$check" in *setuid:*) die "the image has setuid/setgid files: $check" ;; esac
"$DOCKER" image prune -f --filter "label=io.veggur.inputs" >/dev/null   # the replaced build of this tag, if any
# Older builds go too, but the newest few stay: another checkout's tests or benchmark on this dockerd may be about to
# start a container on one (and docker refuses to remove an image a container uses; that one goes next time).
"$DOCKER" images --filter label=io.veggur.inputs --format '{{.CreatedAt}}	{{.Repository}}:{{.Tag}}' | sort -r \
  | cut -f2 | grep -vxF "$TAG" | tail -n +"$KEEP_BUILDS" | xargs -r "$DOCKER" image rm >/dev/null 2>&1 || true
size=$("$DOCKER" image inspect --format '{{.Size}}' "$TAG")
say "built $TAG in $((SECONDS - start)) s ($((size / 1048576)) MiB, cds-training=$MODE, $(printf '%s' "$check" | head -n 1))"
printf '%s\n' "$TAG"
