#!/usr/bin/env bash
# Builds the boot image of the monitoring VM (the "vm" environment flavor) offline, and prints its directory as the
# last stdout line (progress goes to stderr).
#   monitor/build-image.sh JAR          JAR: the shaded CLI jar (cli/target/veggur.jar)
#
# Output, in ${VEGGUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veggur}/monitor/<inputs hash>/:
#   vmlinuz             the test guest's Debian cloud kernel (from guest/build.sh)
#   initramfs.cpio.lz4  the whole root filesystem (below); the VM has no disk. LZ4 (legacy frame, as the kernel
#                       wants it) because unpacking is a third of the boot under TCG: 113 MiB unpack in ~1.3 s from
#                       LZ4 and ~3.5 s from gzip
#   append              the kernel command line to boot it with, one line (the agent reads it from here)
#   inputs              what the hash covers
# Inputs: the jar, the JDK's release, busybox, the glibc files the JRE needs, the kernel and its modules, this
# script and the other recipe files (monitor/*, container/jre.sh, container/image/{veggur,train}). Unchanged inputs
# reuse the directory (~1 s, mostly hashing the jar); the three newest builds are kept.
#
# Kernel command line (append):
#   console=ttyS0 panic=-1 quiet    the console carries VEGGUR-MONITOR-READY / -ERROR lines; a panic ends QEMU
#   veggur.ports=io.veggur.exec,io.veggur.vmi   the virtio-serial ports /init waits for (and names when missing)
#   i8042.noaux i8042.nokbd         no PS/2 probing: QEMU's q35 has the controller, nothing uses it, probing is slow
#
# The VM is started with virtio-serial ports io.veggur.vmi and io.veggur.exec (QEMU chardev sockets), 512 MiB, one
# vCPU, no disk, no network (QEMU -nodefaults). /init (monitor/init) links /dev/virtio-ports/NAME, starts the exec
# service (monitor/veggur-execd) on io.veggur.exec and prints VEGGUR-MONITOR-READY; the tools reach the monitored
# VM with `veggur vmi ... --socket serial:io.veggur.vmi`.
#
# Root filesystem: /opt/veggur/{jre,veggur.jar,veggur.jsa,lib} and /usr/local/bin/veggur exactly as in the tools
# image (container/jre.sh), busybox-static with its applets but logins, password tools and daemons, the virtio
# modules and their load order, /init, the exec service, /etc/passwd and group (root and nobody, no passwords).
# The AppCDS archive is trained at build time by container/image/train, run by the staged JRE in a chroot of the
# staged tree, so every path it records is the one the VM sees.
#
# Invariants: nothing is written outside the cache; an output directory is only ever complete (assembled in a temp
# dir in the cache, renamed into place); builders serialise on a flock; same inputs, same bytes (fixed mtimes,
# sorted cpio, deterministic lz4).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
JDK=${VEGGUR_IMAGE_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}
APPEND='console=ttyS0 panic=-1 quiet veggur.ports=io.veggur.exec,io.veggur.vmi i8042.noaux i8042.nokbd'
# The virtio-serial driver and what it needs, plus the vsock transport (for a later vsock channel); each one's
# dependencies are loaded before it. The test guest's other modules (block, net, balloon, rng) are left out.
WANTED_MODULES=(virtio_pci virtio_console vmw_vsock_virtio_transport)
KEEP_BUILDS=3

exec 3>&1 1>&2   # fd 3 is the real stdout, used once for the result line
say() { printf 'monitor/build-image.sh: %s\n' "$*"; }
die() { say "error: $*"; exit 1; }
# shellcheck source=../container/jre.sh
. "$REPO/container/jre.sh"

case ${1:-} in
  -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&3; exit 0 ;;
  ''|-*) die "usage: $0 JAR" ;;
esac
[ $# -eq 1 ] || die "usage: $0 JAR"
JAR=$1
[ -f "$JAR" ] || die "no such jar: $JAR (build it: ./mvnw -q -B -DskipTests -pl cli -am package)"
JAR=$(cd "$(dirname "$JAR")" && pwd)/$(basename "$JAR")
export LC_ALL=C
umask 022

[ -x "$JDK/bin/jlink" ] && [ -x "$JDK/bin/jdeps" ] || die "no JDK with jlink/jdeps at $JDK (set VEGGUR_IMAGE_JDK)"
for t in sha256sum cpio gzip lz4 flock ldd modinfo unshare chroot; do command -v "$t" >/dev/null || die "$t is missing"; done
ensure_busybox

cache=${VEGGUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veggur}
mkdir -p "$cache/monitor"
mdir=$(cd "$cache/monitor" && pwd)

# ---- kernel and modules: the test guest's ------------------------------------------------------------------
GUEST=$("$REPO/guest/build.sh" | tail -n 1)
[ -f "$GUEST/vmlinuz" ] && [ -f "$GUEST/initramfs.cpio.gz" ] || die "guest/build.sh left no kernel in '$GUEST'"

exec 9>"$mdir/.lock"
if ! flock -n 9; then
  say "waiting for another build (lock $mdir/.lock)"
  flock -w 900 9 || die "another build held $mdir/.lock for 15 minutes"
fi
# We hold the lock, so any leftover temp dir is from an interrupted build.
rm -rf "$mdir"/.tmp.*
tmp=$(mktemp -d "$mdir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The guest's initramfs holds the kernel's virtio modules, decompressed, with their load order (guest/build.sh).
mkdir "$tmp/guest"
gzip -dc "$GUEST/initramfs.cpio.gz" | (cd "$tmp/guest" && cpio -idm --quiet 'lib/modules/*') \
  || die "cannot read the modules from $GUEST/initramfs.cpio.gz"
declare -A needed=()
need() {   # a module and, first, its dependencies (modinfo reads them from the module itself)
  local m=$1 d ko=$tmp/guest/lib/modules/$1.ko
  [ -z "${needed[$m]:-}" ] || return 0
  [ -f "$ko" ] || die "the test guest's initramfs has no module $m"
  needed[$m]=1
  for d in $(modinfo -F depends "$ko" | tr ',' ' '); do need "$d"; done
}
for m in "${WANTED_MODULES[@]}"; do need "$m"; done
MODULES_ORDER=()
while read -r ko; do   # the guest's load order is a dependency order; keep it, restricted to what is needed
  [ -z "${needed[${ko%.ko}]:-}" ] || MODULES_ORDER+=("${ko%.ko}")
done < "$tmp/guest/lib/modules/load.list"
[ ${#MODULES_ORDER[@]} -eq ${#needed[@]} ] || die "load.list of $GUEST lacks some of: ${!needed[*]}"

# ---- inputs ------------------------------------------------------------------------------------------------
JAR_SHA=$(sha256sum <"$JAR" | cut -d' ' -f1)
MODULES=$(jre_modules "$JAR_SHA" "$mdir/jre-modules")
{
  echo "format 1"
  echo "jar $JAR_SHA"
  grep -E '^(IMPLEMENTOR_VERSION|JAVA_RUNTIME_VERSION)=' "$JDK/release"
  echo "jre-modules $MODULES"
  echo "busybox $(sha256sum <"$BUSYBOX")"
  for lib in $(jre_host_libs); do echo "lib $lib $(sha256sum <"$lib")"; done
  echo "kernel $(cat "$GUEST/kernel-release") $(sha256sum <"$GUEST/vmlinuz")"
  for m in "${MODULES_ORDER[@]}"; do echo "module $m $(sha256sum <"$tmp/guest/lib/modules/$m.ko")"; done
  echo "append $APPEND"
  for f in "$HERE"/* "$REPO/container/jre.sh" "$REPO/container/image/veggur" "$REPO/container/image/train"; do
    case $f in *.md) continue ;; esac
    echo "recipe ${f#"$REPO"/} $(sha256sum <"$f")"
  done
} >"$tmp/inputs"
INPUTS=$(sha256sum <"$tmp/inputs" | cut -c1-16)
out=$mdir/$INPUTS
if [ -f "$out/initramfs.cpio.lz4" ]; then
  say "up to date: $out"
  touch "$out"   # most recently used: kept by the pruning below
  printf '%s\n' "$out" >&3
  exit 0
fi
start=$SECONDS

# ---- root filesystem -----------------------------------------------------------------------------------------
root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,lib/modules,usr/local/sbin}
chmod 1777 "$root/tmp"
say "jlink $MODULES"
jre_install "$root" "$MODULES"

busybox_install "$root" init   # /init is the image's own

for m in "${MODULES_ORDER[@]}"; do
  install -m 0644 "$tmp/guest/lib/modules/$m.ko" "$root/lib/modules/$m.ko"
  printf '%s.ko\n' "$m" >>"$root/lib/modules/load.list"
done
say "modules: ${MODULES_ORDER[*]}"

install -m 0755 "$HERE/init" "$root/init"
install -m 0755 "$HERE/veggur-execd" "$HERE/veggur-exec-run" "$root/usr/local/sbin/"
# No passwords anywhere: '*' in passwd, no shadow file. Homes are /tmp (a tmpfs in the VM).
cat >"$root/etc/passwd" <<'EOF'
root:*:0:0:root:/tmp:/bin/sh
nobody:*:65534:65534:nobody:/tmp:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:*:0:
nogroup:*:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
printf 'veggur-monitor %s\n' "$INPUTS" >"$root/etc/veggur-image"

# ---- AppCDS archive ------------------------------------------------------------------------------------------
# The archive records the jar's size and mtime: mtimes are fixed before training, and the initramfs keeps them
# (the kernel restores cpio mtimes, CONFIG_INITRAMFS_PRESERVE_MTIME).
find "$root" -exec touch -h -d @0 {} +
mkdir -m 0777 "$root/out"
cp "$REPO/container/image/train" "$root/out/train"
# in_root LOG COMMAND...: runs COMMAND in the staged tree with the VM's environment. A private mount and pid
# namespace: /proc and /dev exist for the JVM and vanish with it, whatever happens.
userns=(); [ "$(id -u)" -eq 0 ] || userns=(--map-root-user)
in_root() {
  local log=$1; shift
  unshare "${userns[@]}" --mount --pid --fork --kill-child sh -c '
    root=$1; shift
    mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/local/sbin:/bin:/sbin:/usr/bin:/usr/sbin \
      HOME=/tmp VEGGUR_CACHE=/tmp/veggur-cache LANG=C.UTF-8 "$@"' in_root "$root" "$@" >"$log" 2>&1 \
    || { cat "$log"; return 1; }
}
say "training the AppCDS archive"
in_root "$tmp/train.log" /bin/sh /out/train offline || die "AppCDS training failed"
say "$(tail -n 1 "$tmp/train.log")"
# Same inputs, same archive: training runs load classes in an order that varies with thread timing, and which
# constant-pool entries a run has resolved (@cp lines) varies too. So the archive is dumped again from the sorted
# classes (ids renumbered; no class has a custom loader, so no id is referenced) and @-lines, without @cp (measured:
# no difference in start-up).
classlist=$root/out/veggur.jsa.classlist
{
  grep -v '^@' "$classlist" | cut -d' ' -f1 | sort -u | awk '{ print $1 " id: " (NR - 1) }'
  grep '^@' "$classlist" | grep -v '^@cp ' | sort -u
} >"$classlist.sorted"
mv "$classlist.sorted" "$classlist"
in_root "$tmp/dump.log" env VEGGUR_CDS_DUMP=/out/veggur.jsa veggur || die "dumping the AppCDS archive failed"
install -m 0644 "$root/out/veggur.jsa" "$root/opt/veggur/veggur.jsa"
rm -rf "$root/out"
find "$root/tmp" -mindepth 1 -delete

# The archive must map with the VM's flags and heap (-Xshare:on fails otherwise), in the VM's paths.
in_root "$tmp/check.log" /opt/veggur/jre/bin/java -Xshare:on -XX:SharedArchiveFile=/opt/veggur/veggur.jsa -Xmx128m \
  --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
  -XX:-UsePerfData -Xlog:aot=off -Xlog:cds=off -jar /opt/veggur/veggur.jar --version || die "the AppCDS archive does not map"
find "$root/tmp" -mindepth 1 -delete
find "$root" -exec touch -h -d @0 {} +

chmod -R go-w "$root/opt" "$root/etc" "$root/bin" "$root/usr" "$root/lib" "$root/lib64"
suid=$(find "$root" -perm /6000 -print)
[ -z "$suid" ] || die "setuid/setgid files in the image: $suid"

# ---- output --------------------------------------------------------------------------------------------------
stage=$tmp/out
mkdir "$stage"
cp "$GUEST/vmlinuz" "$stage/vmlinuz"
(cd "$root" && find . -mindepth 1 -print0 | sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | lz4 -l -9 -q >"$stage/initramfs.cpio.lz4"
printf '%s\n' "$APPEND" >"$stage/append"
cp "$tmp/inputs" "$stage/inputs"
mv -T "$stage" "$out"
# Older builds go, but the newest few stay: a VM being started may still be reading one.
ls -1dt "$mdir"/[0-9a-f]*/ | tail -n +$((KEEP_BUILDS + 1)) | xargs -r rm -rf
say "built $out in $((SECONDS - start)) s ($(du -m "$out/initramfs.cpio.lz4" | cut -f1) MiB initramfs, $(du -sm "$root" | cut -f1) MiB unpacked)"
printf '%s\n' "$out" >&3
