#!/usr/bin/env bash
# Builds the Veggur test guest: a Debian kernel plus a busybox initramfs holding /init and the static workloads.
#
# Usage: guest/build.sh [--suite NAME] [--kernel-package PKG]      (default PKG: linux-image-cloud-amd64)
#
# Without --suite the kernel package comes from the system's apt sources; with it, from the Debian suite NAME
# (bullseye, bookworm, trixie, ...) through a private apt configuration in the cache, which leaves the system's
# apt configuration, lists and state alone.
#
# Output (cached; the last stdout line is the absolute output directory, everything else goes to stderr):
#   $CACHE/guest/<kernel-release>/{vmlinuz,initramfs.cpio.gz,kernel-release,config,package,inputs.sha256[,System.map]}
#   $CACHE/guest/default -> <kernel-release>           (only maintained for the default package, without --suite)
#   $CACHE/guest/debs/*.deb                             (downloaded kernel packages, reused across rebuilds)
#   $CACHE/guest/suites/<suite>/                        (private apt configuration, lists and caches of a suite)
# with CACHE=${VEGGUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veggur}.
#
# Invariants:
#   - Nothing is written outside the cache (never into the repository).
#   - An output directory is only ever complete: it is assembled in a temp dir in the cache and renamed into place.
#   - Builders serialise on a flock, so concurrent runs are safe; the second one finds the first one's result.
#   - The initramfs is rebuilt whenever inputs.sha256 changes: every file under guest/ except *.md, the host busybox,
#     gcc's version and the exact kernel package version. The .deb download is reused.
set -euo pipefail

DEFAULT_PACKAGE=linux-image-cloud-amd64
# Modules for /proc/modules and virtio devices, in load order; each one's dependencies (from modules.dep) are
# inserted before it. The vsock/balloon/rng drivers are small and idle when QEMU has no such device.
WANTED_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
                virtio_console virtio_blk virtio_net virtio_balloon virtio_rng vmw_vsock_virtio_transport)
# Split out of virtio_pci in 5.14 and 5.15: older kernels (bullseye's 5.10) have neither.
OPTIONAL_MODULES=(virtio_pci_modern_dev virtio_pci_legacy_dev)
DEBIAN_MIRROR=http://deb.debian.org/debian
DEBIAN_SECURITY=http://deb.debian.org/debian-security
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# All chatter goes to stderr; fd 3 is the real stdout, used once for the result line.
exec 3>&1 1>&2
log() { printf 'guest/build.sh: %s\n' "$*"; }
die() { log "error: $*"; exit 1; }

usage() { printf 'usage: %s [--suite NAME] [--kernel-package PKG]   (default %s)\n' "$0" "$DEFAULT_PACKAGE"; }
package=$DEFAULT_PACKAGE
suite=
while (($#)); do
    case $1 in
        --kernel-package) (($# >= 2)) || { usage; exit 2; }; package=$2; shift 2 ;;
        --kernel-package=*) package=${1#*=}; shift ;;
        --suite) (($# >= 2)) || { usage; exit 2; }; suite=$2; shift 2 ;;
        --suite=*) suite=${1#*=}; shift ;;
        -h|--help) usage >&3; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done
[[ -z $suite || $suite =~ ^[a-z][a-z0-9-]*$ ]] || die "bad suite name '$suite'"

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH=$PATH:/usr/sbin:/sbin     # depmod lives in sbin, which non-root PATHs often lack
export LC_ALL=C                       # stable sort order and tool messages
umask 022                             # file modes in the initramfs must not depend on the caller

# ---- tools ------------------------------------------------------------------------------------------------
check_tools() {
    local -A pkg_of=([apt-get]=apt [apt-cache]=apt [dpkg-deb]=dpkg [gcc]=gcc [busybox]=busybox-static
                     [cpio]=cpio [gzip]=gzip [depmod]=kmod [xz]=xz-utils [zstd]=zstd [flock]=util-linux
                     [sha256sum]=coreutils [find]=findutils [ldd]=libc-bin)
    local t missing=()
    for t in apt-get apt-cache dpkg-deb gcc busybox cpio gzip depmod xz zstd flock sha256sum find ldd; do
        command -v "$t" >/dev/null || missing+=("$t (package ${pkg_of[$t]})")
    done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]}"
    # The busybox goes into the initramfs, where there is no libc: it must be static.
    if ldd "$(command -v busybox)" >/dev/null 2>&1; then
        die "busybox at $(command -v busybox) is dynamically linked (install package busybox-static)"
    fi
    local probe
    probe=$(mktemp -d)
    if ! printf 'int main(void){return 0;}\n' | gcc -static -x c -o "$probe/a" - 2>/dev/null; then
        rm -rf "$probe"
        die "gcc cannot link static programs (install package libc6-dev)"
    fi
    rm -rf "$probe"
}
check_tools

# ---- cache ------------------------------------------------------------------------------------------------
cache_root=${VEGGUR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veggur}
mkdir -p "$cache_root/guest/debs" "$cache_root/guest/apt"
gdir=$(cd "$cache_root/guest" && pwd)

exec 9>"$gdir/.lock"
if ! flock -n 9; then
    log "waiting for another build (lock $gdir/.lock)"
    flock 9
fi

# Debian images often disable apt's binary cache (Dir::Cache::pkgcache ""), which makes every apt-cache call
# re-parse all package lists (~1 s). Keep a private one in our cache; apt revalidates it against the lists.
APT_OPTS=(-o "Dir::Cache::pkgcache=$gdir/apt/pkgcache.bin" -o "Dir::Cache::srcpkgcache=$gdir/apt/srcpkgcache.bin")
# As root, apt would fetch as _apt, which cannot write into a private cache dir.
sandbox=()
((EUID != 0)) || sandbox=(-o APT::Sandbox::User=root)

# --suite: apt reads the file named by APT_CONFIG before anything in /etc/apt, and this one points every Dir::Etc,
# Dir::State and Dir::Cache entry into the cache, so neither the system's sources, lists and state nor its
# apt.conf.d (hooks, pins) take part. (-o options would come too late: apt reads apt.conf.d before them.)
if [[ -n $suite ]]; then
    [[ -r $DEBIAN_KEYRING ]] || die "$DEBIAN_KEYRING is missing (install package debian-archive-keyring)"
    sdir=$gdir/suites/$suite
    mkdir -p "$sdir"/etc/{apt.conf.d,preferences.d,sources.list.d,trusted.gpg.d} "$sdir"/state/lists/partial \
             "$sdir"/cache/archives/partial "$sdir"/log
    : > "$sdir/etc/apt.conf"
    [[ -f $sdir/state/status ]] || : > "$sdir/state/status"
    cat > "$sdir/apt.conf" <<EOF
Dir::Etc "$sdir/etc";
Dir::Etc::main "$sdir/etc/apt.conf";
Dir::Etc::Parts "$sdir/etc/apt.conf.d";
Dir::Etc::SourceList "$sdir/etc/sources.list";
Dir::Etc::SourceParts "$sdir/etc/sources.list.d";
Dir::Etc::Preferences "$sdir/etc/preferences";
Dir::Etc::PreferencesParts "$sdir/etc/preferences.d";
Dir::Etc::Trusted "$sdir/etc/trusted.gpg";
Dir::Etc::TrustedParts "$sdir/etc/trusted.gpg.d";
Dir::State "$sdir/state";
Dir::State::Lists "$sdir/state/lists";
Dir::State::status "$sdir/state/status";
Dir::Cache "$sdir/cache";
Dir::Cache::archives "$sdir/cache/archives";
Dir::Cache::pkgcache "$sdir/cache/pkgcache.bin";
Dir::Cache::srcpkgcache "";
Dir::Log "$sdir/log";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order { "gz"; };
EOF
    export APT_CONFIG=$sdir/apt.conf
    APT_OPTS=()
    suite_sources() {   # $1 = 1 to include the suite's security archive
        printf 'deb [signed-by=%s] %s %s main\n' "$DEBIAN_KEYRING" "$DEBIAN_MIRROR" "$suite"
        if (($1)); then printf 'deb [signed-by=%s] %s %s-security main\n' "$DEBIAN_KEYRING" "$DEBIAN_SECURITY" "$suite"; fi
    }
    # The lists are refreshed at most once a day; between refreshes (or offline, with old lists) nothing is fetched.
    stamp=$sdir/state/updated
    if [[ -z $(find "$stamp" -mmin -1440 2>/dev/null) ]]; then
        log "updating the package lists of $suite"
        suite_sources 1 > "$sdir/etc/sources.list"
        if apt-get "${sandbox[@]}" update -q; then
            touch "$stamp"
        else
            # A suite without a security archive (sid, or one not released yet) fails the update: retry without.
            log "note: apt-get update failed with $suite-security; trying $suite alone"
            suite_sources 0 > "$sdir/etc/sources.list"
            if apt-get "${sandbox[@]}" update -q; then
                touch "$stamp"
            elif [[ -n $(find "$sdir/state/lists" -name '*_Packages*' -print -quit) ]]; then
                log "warning: apt-get update for $suite failed; using the lists of $(date -r "$sdir/state/lists" +%F)"
            else
                die "apt-get update for suite $suite failed (not a suite on $DEBIAN_MIRROR?)"
            fi
        fi
    fi
fi

# ---- kernel package -----------------------------------------------------------------------------------------
candidate() { apt-cache "${APT_OPTS[@]}" policy -- "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'; }

if [[ -z $(candidate "$package") ]]; then
    [[ -z $suite ]] || die "suite $suite has no installable $package"
    ((EUID == 0)) || die "apt-cache knows nothing of $package; run 'apt-get update' as root first"
    log "apt-cache knows nothing of $package: running apt-get update"
    apt-get "${APT_OPTS[@]}" update -q || die "apt-get update failed"
    [[ -n $(candidate "$package") ]] || die "no installable package $package"
fi

# A metapackage (linux-image-cloud-amd64) depends on exactly one concrete linux-image-X.Y.Z-N-flavour package.
if [[ $package =~ ^linux-image-[0-9] ]]; then
    concrete=$package
else
    concrete=$(apt-cache "${APT_OPTS[@]}" depends -- "$package" |
               awk '($1 == "Depends:" || $1 == "|Depends:") && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    [[ -n $concrete ]] || die "$package has no linux-image-X.Y.Z-... dependency"
fi
version=$(candidate "$concrete")
[[ -n $version ]] || die "no installable candidate for $concrete"
# Debian names the package after its kernel release; this guess only serves the cache lookup, the real
# release is read from the package contents below.
krel_guess=${concrete#linux-image-}
krel_guess=${krel_guess%-unsigned}
log "kernel package${suite:+ from $suite}: $package -> $concrete $version"

# Everything that determines the initramfs and kernel. Paths are relative so the repo may live anywhere.
inputs_sha=$( {
    echo "format 1"
    echo "package $concrete $version"
    echo "gcc $(gcc -dumpfullversion) $(gcc -dumpmachine)"
    echo "busybox $(sha256sum < "$(command -v busybox)")"
    (cd "$GUEST_DIR" && find . -type f ! -name '*.md' -print0 | sort -z | xargs -0 sha256sum)
} | sha256sum | cut -d' ' -f1)

finish() {   # $1 = kernel release of a complete output dir
    if [[ $package == "$DEFAULT_PACKAGE" && -z $suite ]]; then
        # Replace the symlink atomically: rename over the old one.
        ln -sfn "$1" "$gdir/.default.new" && mv -Tf "$gdir/.default.new" "$gdir/default"
    fi
    printf '%s\n' "$gdir/$1" >&3
    exit 0
}

out=$gdir/$krel_guess
if [[ -f $out/inputs.sha256 && $(<"$out/inputs.sha256") == "$inputs_sha" ]]; then
    log "up to date: $out"
    finish "$krel_guess"
fi

# We hold the lock, so any leftover temp dir is from an interrupted build.
rm -rf "$gdir"/.tmp.*
tmp=$(mktemp -d "$gdir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deb_glob="$gdir/debs/${concrete}_${version//:/%3a}_*.deb"
# shellcheck disable=SC2206 # deliberate glob expansion
debs=($deb_glob)
if [[ -f ${debs[0]} ]]; then
    deb=${debs[0]}
    log "reusing $deb"
else
    log "downloading $concrete=$version"
    mkdir "$tmp/dl"
    (cd "$tmp/dl" && apt-get "${APT_OPTS[@]}" download -q "${sandbox[@]}" "$concrete=$version") || die "apt-get download failed"
    dl=("$tmp"/dl/*.deb)
    [[ -f ${dl[0]} ]] || die "apt-get download produced no .deb"
    deb=$gdir/debs/${dl[0]##*/}
    mv -f "${dl[0]}" "$deb"
fi

log "extracting kernel"
pkg=$tmp/pkg
dpkg-deb -x "$deb" "$pkg" || die "cannot extract $deb"
vmlinuz=("$pkg"/boot/vmlinuz-*)
[[ -f ${vmlinuz[0]} ]] || die "$concrete contains no /boot/vmlinuz-*"
krel=${vmlinuz[0]##*/vmlinuz-}
[[ $krel == "$krel_guess" ]] || log "note: $concrete holds kernel release $krel"
# bookworm ships /lib/modules, usr-merged suites /usr/lib/modules.
if [[ -d $pkg/lib/modules/$krel ]]; then modbase=$pkg
elif [[ -d $pkg/usr/lib/modules/$krel ]]; then modbase=$pkg/usr
else die "$concrete contains no modules for $krel"
fi
moddir=$modbase/lib/modules/$krel

stage=$tmp/out
mkdir "$stage"
cp "${vmlinuz[0]}" "$stage/vmlinuz"
[[ ! -f $pkg/boot/config-$krel ]] || cp "$pkg/boot/config-$krel" "$stage/config"
printf '%s\n' "$krel" > "$stage/kernel-release"
printf '%s=%s\n' "$concrete" "$version" > "$stage/package"
# Debian ships a one-line stub System.map (the real one is in -dbg); keep it only if it is a real one.
if grep -qE '^[0-9a-f]+ [Tt] _text$' "$pkg/boot/System.map-$krel" 2>/dev/null; then
    cp "$pkg/boot/System.map-$krel" "$stage/System.map"
fi

# ---- modules ------------------------------------------------------------------------------------------------
# The package has no modules.dep (its postinst runs depmod), so generate one for the extracted tree.
depmod -b "$modbase" "$krel" || die "depmod failed"

declare -A mod_path=() mod_deps=() builtin=() seen=()
# Module name from a path: basename without .ko[.xz|.zst|.gz], '-' read as '_'. Sets REPLY (no subshell: this
# runs for every module of the kernel).
modname() { local n=${1##*/}; n=${n%%.ko*}; REPLY=${n//-/_}; }
while IFS= read -r line; do
    modname "${line%%:*}"
    mod_path[$REPLY]=${line%%:*}
    mod_deps[$REPLY]=${line#*:}
done < "$moddir/modules.dep"
while IFS= read -r line; do modname "$line"; builtin[$REPLY]=1; done < "$moddir/modules.builtin"

root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,lib/modules}
chmod 1777 "$root/tmp"
order=()
add_module() {   # depth-first: dependencies first, each module once
    local m=$1 d
    [[ -z ${seen[$m]:-} ]] || return 0
    seen[$m]=1
    for d in ${mod_deps[$m]:-}; do modname "$d"; add_module "$REPLY"; done
    order+=("$m")
}
for m in "${WANTED_MODULES[@]}"; do
    if [[ -n ${mod_path[$m]:-} ]]; then add_module "$m"
    elif [[ -n ${builtin[$m]:-} ]]; then log "note: $m is built into $krel"
    elif [[ " ${OPTIONAL_MODULES[*]} " == *" $m "* ]]; then log "note: $krel has no $m"
    else die "module $m is neither built in nor shipped in $concrete"
    fi
done
for m in "${order[@]}"; do
    src=$moddir/${mod_path[$m]}
    dst=$root/lib/modules/$m.ko
    # Decompress here so the guest needs no decompressor and insmod sees a plain (still signed) ELF.
    case $src in
        *.ko)     cp "$src" "$dst" ;;
        *.ko.xz)  xz -dc "$src" > "$dst" ;;
        *.ko.zst) zstd -qdc "$src" > "$dst" ;;
        *.ko.gz)  gzip -dc "$src" > "$dst" ;;
        *) die "unknown module format: $src" ;;
    esac
    printf '%s.ko\n' "$m" >> "$root/lib/modules/load.list"
done
log "modules: ${order[*]}"

# ---- userland ----------------------------------------------------------------------------------------------
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $(busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done
for src in "$GUEST_DIR"/src/*.c; do
    name=veggur-$(basename "$src" .c)
    # -s: symbols are not needed in the guest and would double the initramfs.
    gcc -static -O2 -Wall -Werror -pthread -s -o "$root/bin/$name" "$src" || die "compiling $src failed"
done
install -m 0755 "$GUEST_DIR/init" "$root/init"

# Reproducible archive: fixed mtimes, sorted names, root ownership, no gzip timestamp.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 -print0 | sort -z |
    cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | gzip -n > "$stage/initramfs.cpio.gz"
printf '%s\n' "$inputs_sha" > "$stage/inputs.sha256"

# ---- install atomically --------------------------------------------------------------------------------------
# Readers see either the old complete dir, nothing (for an instant), or the new complete dir.
out=$gdir/$krel
[[ ! -e $out ]] || mv -T "$out" "$tmp/old"
mv -T "$stage" "$out"
log "built $out ($(du -k "$out/initramfs.cpio.gz" | cut -f1) KiB initramfs)"
finish "$krel"
