#!/usr/bin/env bash
# End-to-end check of the container flavor with real VMs, and its numbers (container/README.md shows a run).
#   VEGGUR_HOME=/tmp/envtest-home container/verify.sh [--keep]
# Boots the test guests envtest and envtest2 (./veggur host vm start), starts the private dockerd, builds the image
# (AppCDS trained on envtest), deploys an environment per VM with container/run-env.sh, compares what the tools see
# inside with the host, checks the isolation, measures deployment and process-list times, then removes the
# containers, stops both VMs and the dockerd (unless --keep). Exits non-zero if a check fails.
# VEGGUR_REPO: the checkout whose ./veggur and cli/target/veggur.jar are used (default: this one).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${VEGGUR_REPO:-$(dirname "$HERE")}
export VEGGUR_HOME=${VEGGUR_HOME:-/tmp/envtest-home}
RUNS=${VEGGUR_VERIFY_RUNS:-20}
DEPLOYS=${VEGGUR_VERIFY_DEPLOYS:-5}
KEEP=0; [ "${1:-}" = --keep ] && KEEP=1
VM=envtest VM2=envtest2 ENV1=envtest-env ENV2=envtest2-env
JAR=$REPO/cli/target/veggur.jar
JDK=${VEGGUR_IMAGE_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}
FAILED=0

section() { printf '\n== %s\n' "$*"; }
check() { # check NAME CONDITION-RESULT(0/1) DETAIL
  if [ "$2" -eq 0 ]; then printf 'PASS  %s\n' "$1"; else printf 'FAIL  %s  %s\n' "$1" "${3:-}"; FAILED=1; fi
}
now_ms() { date +%s%3N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
veggur() { "$REPO/veggur" "$@"; }

start_vm() {
  local name=$1 log="$VEGGUR_HOME/vms/$1/console.log" deadline
  veggur host vm info "$name" 2>/dev/null | grep -q 'state *running' || veggur host vm start "$name" >/dev/null
  deadline=$((SECONDS + 180))
  until grep -q VEGGUR-READY "$log" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "$name never printed VEGGUR-READY" >&2; exit 1; }
    sleep 0.2
  done
}

cleanup() {
  [ $KEEP -eq 1 ] && return 0
  "$DOCKER" rm -f "$ENV1" "$ENV2" verify-root-probe >/dev/null 2>&1 || true
  veggur host vm stop "$VM" >/dev/null 2>&1 || true
  veggur host vm stop "$VM2" >/dev/null 2>&1 || true
  "$HERE/dockerd.sh" stop || true
}

section "setup (VEGGUR_HOME=$VEGGUR_HOME, repo $REPO)"
[ -f "$JAR" ] || (cd "$REPO" && ./mvnw -q -B -DskipTests -pl cli -am package)
DOCKER_HOST=$("$HERE/dockerd.sh" start | tail -n 1)
export DOCKER_HOST
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=$(command -v docker)
trap cleanup EXIT
t=$(now_ms); start_vm "$VM"; start_vm "$VM2"; echo "VMs $VM and $VM2 ready in $(($(now_ms) - t)) ms"
SOCK1="$VEGGUR_HOME/vms/$VM/socket" SOCK2="$VEGGUR_HOME/vms/$VM2/socket"
TAG=$("$HERE/build-image.sh" "$JAR" --train-socket-dir "$SOCK1" | tail -n 1)
echo "image $TAG ($("$DOCKER" image inspect --format '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"

set +e   # from here on every failure is reported by check, not by exiting
section "deployment: run-env.sh until the first successful 'veggur vmi info' inside ($DEPLOYS times)"
totals=() runs=() execs=() connected=()
for i in $(seq "$DEPLOYS"); do
  t=$(now_ms)
  err=$("$HERE/run-env.sh" "$SOCK1" "$ENV1" --image "$TAG" --replace -- veggur vmi info --socket /vmi/vmi.sock 2>&1 >/dev/null) \
    || { echo "$err"; check "deploy $i" 1; continue; }
  totals+=($(($(now_ms) - t)))
  run_ms=$(sed -n 's/.*started .* in \([0-9]*\) ms$/\1/p' <<<"$err")
  exec_ms=$(sed -n 's/.* exited 0 after \([0-9]*\) ms$/\1/p' <<<"$err")
  runs+=("$run_ms") execs+=("$exec_ms") connected+=($((run_ms + exec_ms)))
done
med() { printf '%s\n' "$@" | median; }
echo "docker run -d:                          ${runs[*]} ms (median $(med "${runs[@]}"))"
echo "first docker exec veggur vmi info:      ${execs[*]} ms (median $(med "${execs[@]}"))"
echo "docker run to tool connected:           ${connected[*]} ms (median $(med "${connected[@]}"))"
echo "run-env.sh as a whole (request to connected): ${totals[*]} ms (median $(med "${totals[@]}"))"
"$HERE/run-env.sh" "$SOCK2" "$ENV2" --image "$TAG" --replace -- veggur vmi info --socket /vmi/vmi.sock >/dev/null 2>&1
check "second environment $ENV2 for $VM2" $?
UID1=$("$DOCKER" exec "$ENV1" id -u)

section "same view inside and outside"
host_ps=$(veggur vmi ps --vm "$VM")
ct_ps=$("$DOCKER" exec "$ENV1" veggur vmi ps --socket /vmi/vmi.sock)
# Two listings of a live guest are two snapshots: a task's state (R/S) may differ, and kworkers come and go (LAB.md).
# Everything else (pid, tgid, ppid, uid, name) must be identical.
identity() { awk '{ $5 = ""; print }' | grep -v 'kworker/'; }
if [ "$host_ps" = "$ct_ps" ]; then check "vmi ps: container == host ($(wc -l <<<"$host_ps") lines, identical)" 0
else
  diff <(echo "$host_ps") <(echo "$ct_ps") | sed 's/^/   /'
  [ "$(identity <<<"$host_ps")" = "$(identity <<<"$ct_ps")" ]
  check "vmi ps: container == host ($(wc -l <<<"$host_ps") lines; differences only in task state or transient kworkers)" $?
fi
echo "$ct_ps" | head -n 3; echo "   ..."; echo "$ct_ps" | tail -n 4
kernel=$("$DOCKER" exec "$ENV1" veggur vmi kernel --socket /vmi/vmi.sock 2>&1); rc=$?
echo "$kernel"
check "vmi kernel inside (profile cache in /tmp: VEGGUR_CACHE=/tmp/veggur-cache)" $rc
no_times() { sed -E 's/ +[0-9]+\.[0-9]+ ms/ T ms/'; }
[ "$(no_times <<<"$kernel")" = "$(veggur vmi kernel --vm "$VM" 2>&1 | no_times)" ]
check "vmi kernel: container == host (step timings aside)" $?
id1=$("$DOCKER" exec "$ENV1" veggur vmi info --socket /vmi/vmi.sock | awk '/^vm id/ { print $3 }')
id2=$("$DOCKER" exec "$ENV2" veggur vmi info --socket /vmi/vmi.sock | awk '/^vm id/ { print $3 }')
[ -n "$id1" ] && [ "$id1" = "$(veggur vmi info --vm "$VM" | awk '/^vm id/ { print $3 }')" ] && [ "$id1" != "$id2" ]
check "each environment reaches its own VM ($ENV1 -> $id1, $ENV2 -> $id2)" $?

section "isolation inside $ENV1"
"$DOCKER" exec "$ENV1" sh -c 'echo "uid=$(id -u) gid=$(id -g)"; grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status'
caps=$("$DOCKER" exec "$ENV1" grep -E '^Cap(Prm|Eff|Bnd|Amb|Inh):' /proc/self/status | awk '{ print $2 }' | sort -u)
[ "$caps" = 0000000000000000 ] && [ "$UID1" != 0 ]
check "no capabilities at all (CapEff=CapPrm=CapBnd=0), uid $UID1 not root" $?
echo "mounts:"
echo "   (mount point, type, source, options, path inside the source filesystem)"
mounts=$("$DOCKER" exec "$ENV1" awk '{ for (i = 7; $i != "-"; i++); print $5, $(i+1), $(i+2), $6, $4 }' /proc/self/mountinfo)
echo "$mounts" | sed 's/^/   /'
# Host paths: bind mounts show the host device as source. Allowed: /vmi (the socket dir) and the three files Docker
# generates per container (/etc/hosts, /etc/hostname, /etc/resolv.conf, under the container's own data directory).
others=$(awk '$3 ~ /^\/dev\// && $1 !~ /^\/(vmi|etc\/hosts|etc\/hostname|etc\/resolv\.conf)$/' <<<"$mounts")
check "only /vmi (+ Docker's per-container /etc/hosts|hostname|resolv.conf) comes from the host filesystem" \
  "$([ -z "$others" ]; echo $?)" "$others"
awk '$1 == "/vmi" && $4 ~ /(^|,)ro(,|$)/ { ok = 1 } END { exit !ok }' <<<"$mounts"; check "/vmi is mounted read-only" $?
awk '$1 == "/" && $4 ~ /(^|,)ro(,|$)/ { ok = 1 } END { exit !ok }' <<<"$mounts"; check "root filesystem is read-only" $?
ifs=$("$DOCKER" exec "$ENV1" ls /sys/class/net | paste -sd' ' -)
check "network interfaces: '$ifs'" "$([ "$ifs" = lo ]; echo $?)"
"$DOCKER" exec "$ENV1" sh -c 'rm -f /vmi/vmi.sock 2>&1; touch /vmi/planted 2>&1; touch /planted 2>&1' | sed 's/^/   /'
"$DOCKER" exec "$ENV1" test -S /vmi/vmi.sock; check "socket cannot be removed or replaced from inside" $?
socks=$("$DOCKER" exec "$ENV1" sh -c 'find / -xdev -type s 2>/dev/null; find /vmi -type s' | sort -u | paste -sd' ' -)
check "sockets visible inside: '$socks'" "$([ "$socks" = /vmi/vmi.sock ]; echo $?)"
"$DOCKER" exec "$ENV1" test -e "$SOCK2"; rc=$?
check "$VM2's socket dir ($SOCK2) does not exist inside" "$([ $rc -ne 0 ]; echo $?)"
out=$("$DOCKER" exec "$ENV1" veggur vmi info --socket "$SOCK2/vmi.sock" 2>&1); rc=$?
echo "   veggur vmi info --socket $SOCK2/vmi.sock -> rc $rc: $out"
check "$VM2's socket is unreachable from $ENV1" "$([ $rc -ne 0 ]; echo $?)"
limits=$("$DOCKER" exec "$ENV1" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max' | paste -sd' ' -)
check "cgroup v1 limits seen inside (memory, pids): $limits" "$([ "$limits" = '536870912 128' ]; echo $?)"
CID=$("$DOCKER" inspect --format '{{.Id}}' "$ENV1")
PIDS_CG=$(awk -F: '$2 == "pids" { print $3 }' "/proc/$("$DOCKER" inspect --format '{{.State.Pid}}' "$ENV1")/cgroup")
PIDS_CG=/sys/fs/cgroup/pids$PIDS_CG
refused_before=$(awk '{ print $2 }' "$PIDS_CG/pids.events")
"$DOCKER" exec "$ENV1" sh -c 'i=0; while [ $i -lt 200 ]; do sleep 3 & i=$((i+1)); done' >/dev/null 2>&1
peak=$(<"$PIDS_CG/pids.current")
refused=$(( $(awk '{ print $2 }' "$PIDS_CG/pids.events") - refused_before ))
echo "   200 background sleeps: pids.current=$peak, forks refused by the pids cgroup: $refused ($PIDS_CG)"
check "pids limit applied (cgroup v1)" "$([ "$peak" -le 128 ] && [ "$refused" -gt 0 ]; echo $?)"
deadline=$((SECONDS + 20))
while [ "$(<"$PIDS_CG/pids.current")" -gt 4 ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done

section "read-only memory grant cannot be reopened for writing (/proc/self/fd)"
probe=$(mktemp -d)
"$JDK/bin/javac" --release 25 -cp "$JAR" -d "$probe" "$HERE/verify/FdReopenProbe.java"
(cd "$probe" && "$JDK/bin/jar" cf probe.jar io)
run_probe='cat > /tmp/probe.jar && /opt/veggur/jre/bin/java --enable-native-access=ALL-UNNAMED
  -Dorg.newsclub.net.unix.library.override=/opt/veggur/lib/libjunixsocket-native.so
  -cp /opt/veggur/veggur.jar:/tmp/probe.jar io.veggur.vmi.FdReopenProbe /vmi/vmi.sock'
out=$("$DOCKER" exec -i "$ENV1" sh -c "$(tr '\n' ' ' <<<"$run_probe")" <"$probe/probe.jar" 2>&1)
echo "$out" | sed 's/^/   /'
grep -q 'reopen-rw: DENIED' <<<"$out"; check "as uid $UID1: reopening the granted fd read-write is denied" $?
rm -rf "$probe"

section "process list: $RUNS runs each, interleaved (median wall time per run)"
nat_vm=() nat_sock=() ct=()
for i in $(seq "$RUNS"); do
  t=$(now_ms); veggur vmi ps --vm "$VM" >/dev/null; nat_vm+=($(($(now_ms) - t)))
  t=$(now_ms); veggur vmi ps --socket "$SOCK1/vmi.sock" >/dev/null; nat_sock+=($(($(now_ms) - t)))
  t=$(now_ms); "$DOCKER" exec "$ENV1" veggur vmi ps --socket /vmi/vmi.sock >/dev/null; ct+=($(($(now_ms) - t)))
done
m_vm=$(printf '%s\n' "${nat_vm[@]}" | median) m_sock=$(printf '%s\n' "${nat_sock[@]}" | median)
m_ct=$(printf '%s\n' "${ct[@]}" | median)
# CPU time (user + sys), which contention on a busy host distorts far less than wall time: native from the shell's
# children, the container from its cpuacct cgroup.
TIMEFORMAT='%R %U %S'
nat_cpu=$( { time for i in $(seq "$RUNS"); do veggur vmi ps --socket "$SOCK1/vmi.sock" >/dev/null; done; } 2>&1 )
CPU_CG=/sys/fs/cgroup/cpuacct$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ { print $3 }' "/proc/$("$DOCKER" inspect --format '{{.State.Pid}}' "$ENV1")/cgroup")
c0=$(<"$CPU_CG/cpuacct.usage"); t=$(now_ms)
"$DOCKER" exec "$ENV1" sh -c "for i in \$(seq $RUNS); do veggur vmi ps --socket /vmi/vmi.sock >/dev/null; done"
ct_wall=$(($(now_ms) - t)); c1=$(<"$CPU_CG/cpuacct.usage")
awk -v vm="$m_vm" -v so="$m_sock" -v ct="$m_ct" -v nc="$nat_cpu" -v cw="$ct_wall" -v cc="$(( (c1 - c0) / 1000000 ))" -v r="$RUNS" 'BEGIN {
  split(nc, n, " ")
  printf "wall  native ./veggur vmi ps --vm NAME        %5d ms\n", vm
  printf "wall  native ./veggur vmi ps --socket PATH   %5d ms\n", so
  printf "wall  docker exec ENV veggur vmi ps          %5d ms   %.2fx native (--socket)\n", ct, ct / so
  printf "loop  native, %d runs in one shell           %5d ms/run, cpu %4d ms/run\n", r, n[1] * 1000 / r, (n[2] + n[3]) * 1000 / r
  printf "loop  inside, %d runs in one docker exec     %5d ms/run, cpu %4d ms/run   %.2fx native cpu\n", r, cw / r, cc / r, (cc / r) / ((n[2] + n[3]) * 1000 / r)
}'
# The image's own files without a container (chroot, private mount namespace): what the container itself costs.
rootfs=$(mktemp -d) created=$("$DOCKER" create "$TAG" 2>/dev/null)
chmod 0755 "$rootfs"
"$DOCKER" export "$created" | tar -x -C "$rootfs"
"$DOCKER" rm "$created" >/dev/null
in_chroot() {
  unshare -m sh -c "mount --bind '$SOCK1' '$rootfs/vmi' && mount -t proc proc '$rootfs/proc' &&
    touch '$rootfs/dev/null' && mount --bind /dev/null '$rootfs/dev/null' &&
    exec chroot --userspec=$UID1:$UID1 '$rootfs' /bin/sh -c 'export VEGGUR_CACHE=/tmp/veggur-cache HOME=/tmp
    PATH=/usr/local/bin:/bin; for i in \$(seq $1); do veggur vmi ps --socket /vmi/vmi.sock >/dev/null; done'"
}
in_chroot 1   # warm the profile cache, as the container's is
chroot_cpu=$( { time in_chroot "$RUNS"; } 2>&1 )
awk -v c="$chroot_cpu" -v r="$RUNS" 'BEGIN { split(c, n, " ");
  printf "loop  image files on the host (chroot), %d runs  %5d ms/run, cpu %4d ms/run\n", r, n[1] * 1000 / r, (n[2] + n[3]) * 1000 / r }'
rm -rf "$rootfs"
echo "container memory peak (memory.max_usage_in_bytes): $(( $(cat "/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" { print $3 }' "/proc/$("$DOCKER" inspect --format '{{.State.Pid}}' "$ENV1")/cgroup")/memory.max_usage_in_bytes") / 1048576 )) MiB"

section "result"
if [ $FAILED -eq 0 ]; then echo "all checks passed"; else echo "SOME CHECKS FAILED"; fi
exit $FAILED
