# Sourced (bash) by container/build-image.sh and monitor/build-image.sh: what the tools image and the monitoring VM
# share, so both carry the same JRE (modules, launcher, host libraries) and the same busybox. The caller defines
# die() and say(), and sets JDK (a JDK with jlink and jdeps) and JAR (absolute path of the shaded jar).

# The static busybox both images install (its unzip also reads the jar).
BUSYBOX=/bin/busybox
# Applets neither image gets: logins, password tools and network daemons (there is no network, and no one logs in).
BUSYBOX_SKIPPED="su login sulogin passwd chpasswd cryptpw mkpasswd adduser addgroup deluser delgroup vlock getty \
telnetd httpd ftpd tftpd udhcpd dhcprelay inetd ntpd dnsd fakeidentd crond crontab sendmail syslogd klogd linuxrc"

# ensure_busybox: installs busybox-static (as root) unless a static one is at BUSYBOX.
ensure_busybox() {
  if [ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1; then return 0; fi   # present and static
  [ "$(id -u)" -eq 0 ] || die "a static busybox is needed at $BUSYBOX: sudo apt-get install busybox-static"
  say "installing busybox-static"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null \
    || die "apt-get install busybox-static failed"
}

# busybox_install ROOT [APPLET...]: busybox at ROOT/bin/busybox with a link for every applet but BUSYBOX_SKIPPED and
# the APPLETs given (the monitoring VM brings its own /init, for instance).
busybox_install() {
  local root=$1 skipped applet
  shift
  skipped=$(printf '%s\n' $BUSYBOX_SKIPPED "$@" | paste -sd'|' -)
  mkdir -p "$root/bin"
  install -m 0755 "$BUSYBOX" "$root/bin/busybox"
  "$BUSYBOX" --list-full | grep -vE "(^|/)($skipped)\$" | while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
  done
}

# Referenced only by optional code the VMI tools never load (Jackson's java.beans/java.sql support, junixsocket's
# RMI credentials helper); dropping them saves ~36 MB. Checked by running the `vmi` commands in the image.
JRE_DROP_MODULES=${VEGGUR_IMAGE_DROP_MODULES:-java.desktop java.rmi java.sql}
# The launcher both images install as /usr/local/bin/veggur (JVM flags, AppCDS hooks).
JRE_LAUNCHER=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/image/veggur

# jre_modules JAR_SHA CACHE_DIR: the modules to jlink, comma-separated: what jdeps finds in the jar, plus
# jdk.unsupported, minus JRE_DROP_MODULES. jdeps takes seconds and its answer depends only on the jar, the JDK and
# the drop list, so it is remembered in CACHE_DIR.
jre_modules() {
  local jar_sha=$1 cache=$2 key m drop keep=()
  key=$(printf '%s %s %s' "$jar_sha" "$(grep '^JAVA_RUNTIME_VERSION=' "$JDK/release")" "$JRE_DROP_MODULES" | sha256sum | cut -c1-32)
  if [ -s "$cache/$key" ]; then
    cat "$cache/$key"
    return 0
  fi
  for m in $("$JDK/bin/jdeps" --ignore-missing-deps --print-module-deps --multi-release 25 "$JAR" | tr ',' ' ') jdk.unsupported; do
    for drop in $JRE_DROP_MODULES; do [ "$m" = "$drop" ] && continue 2; done
    keep+=("$m")
  done
  [ ${#keep[@]} -gt 1 ] || die "jdeps found no modules in $JAR"
  mkdir -p "$cache"
  printf '%s\n' "${keep[@]}" | sort -u | paste -sd, - | tee "$cache/$key"
}

# jre_needed_libs FILE...: the shared libraries the ELF files need, as ldd resolves them on this host (plus the
# dynamic loader), except the JDK's own.
jre_needed_libs() {
  ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | grep -v "^$JDK/" | sort -u
}

# jre_host_libs: the host libraries any JRE linked from JDK needs (for the callers' input hashes).
jre_host_libs() {
  jre_needed_libs "$JDK/bin/java" "$JDK/lib/server/libjvm.so" "$JDK"/lib/*.so
}

# jre_install ROOT MODULES: ROOT/opt/veggur/{jre,veggur.jar,lib/libjunixsocket-native.so}, ROOT/usr/local/bin/veggur
# and the host libraries those need (copied to the same paths under ROOT). No default CDS archive in the JRE: each
# image trains its own static archive, which holds the JDK classes the tools use too.
jre_install() {
  local root=$1 modules=$2 native lib
  mkdir -p "$root/opt/veggur/lib" "$root/usr/local/bin"
  "$JDK/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
    --output "$root/opt/veggur/jre" >/dev/null
  install -m 0644 "$JAR" "$root/opt/veggur/veggur.jar"
  # The launcher points junixsocket at this copy instead of letting it extract one to /tmp (noexec in containers).
  native=$("$BUSYBOX" unzip -l "$JAR" | awk '{ print $4 }' | grep -E '^lib/amd64-Linux-clang/jni/libjunixsocket-native-.*\.so$' | head -n 1)
  [ -n "$native" ] || die "the jar holds no junixsocket amd64 Linux library"
  "$BUSYBOX" unzip -p "$JAR" "$native" >"$root/opt/veggur/lib/libjunixsocket-native.so"
  chmod 0755 "$root/opt/veggur/lib/libjunixsocket-native.so"
  install -m 0755 "$JRE_LAUNCHER" "$root/usr/local/bin/veggur"
  for lib in $(jre_needed_libs "$root"/opt/veggur/jre/bin/* "$root"/opt/veggur/jre/lib/*.so "$root"/opt/veggur/jre/lib/server/*.so \
               "$root/opt/veggur/lib/libjunixsocket-native.so" | grep -v "^$root/"); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
    chmod 0755 "$root$lib"
  done
  [ -e "$root/lib64/ld-linux-x86-64.so.2" ] || die "ldd did not name the dynamic loader"
}
