#!/usr/bin/env bash
# Veggur's private Docker Engine: one dockerd per host, separate from any system Docker.
#   container/dockerd.sh start    install docker.io if needed (root), start dockerd unless it already answers
#   container/dockerd.sh stop     stop it (SIGTERM, bounded wait; its containers are stopped with it)
#   container/dockerd.sh status   say whether it runs; exit 0 if it answers, 3 if not
#   container/dockerd.sh host     print the DOCKER_HOST address (unix://...) other scripts and the agent use
#
# Everything lives under ${VEGGUR_HOME:-/var/lib/veggur}/docker:
#   data/          --data-root (images, containers, containerd content)
#   exec/          --exec-root (runtime state, containerd's sockets)
#   docker.sock    the API socket (0660 root:root; falls back to /run/veggur/ if the path is too long for AF_UNIX)
#   dockerd.pid    --pidfile
#   dockerd.log    the daemon's log (appended)
#   dockerd.lock   flock: start/stop/status may run concurrently
# Settings (measured on the build machines: overlay2, cgroup v1, runc): no bridge, no iptables, no-new-privileges by
# default, its own containerd namespace and cgroup parent, so it never collides with a system Docker.
set -euo pipefail

say() { printf 'veggur-dockerd: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  VEGGUR_HOME=${VEGGUR_HOME:-/var/lib/veggur}
else
  VEGGUR_HOME=${VEGGUR_HOME:-$HOME/.local/state/veggur}
fi
DIR="$VEGGUR_HOME/docker"
DATA="$DIR/data"
EXEC="$DIR/exec"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
LOCK="$DIR/dockerd.lock"
START_TIMEOUT=${VEGGUR_DOCKERD_START_TIMEOUT:-60}   # seconds
STOP_TIMEOUT=${VEGGUR_DOCKERD_STOP_TIMEOUT:-40}     # seconds (dockerd's own --shutdown-timeout is 15)

# AF_UNIX paths are limited to 107 bytes; containerd's sockets under exec/ add ~40 more. A long VEGGUR_HOME moves
# both to /run/veggur/docker-<hash of VEGGUR_HOME>.
SOCK="$DIR/docker.sock"
if [ ${#SOCK} -gt 100 ] || [ ${#EXEC} -gt 60 ]; then
  RUNTAG=$(printf '%s' "$VEGGUR_HOME" | sha256sum | cut -c1-12)
  SOCK="/run/veggur/docker-$RUNTAG.sock"
  EXEC="/run/veggur/docker-$RUNTAG"
fi
HOST="unix://$SOCK"

# docker.io's own client, not whatever `docker` comes first on PATH (a newer static CLI may shadow it).
docker_cli() {
  if [ -x /usr/bin/docker ]; then printf '/usr/bin/docker\n'; else command -v docker || true; fi
}

ensure_installed() {
  local missing=() t
  for t in dockerd containerd runc; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ -n "$(docker_cli)" ] || missing+=(docker)
  command -v flock >/dev/null 2>&1 || die "flock is missing (Debian package util-linux)"
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing: ${missing[*]}; install with: sudo apt-get install docker.io   (or run as root)"
  fi
  say "installing docker.io (missing: ${missing[*]})"
  # policy-rc.d or no systemd: the package's own docker.service is neither needed nor started by us.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null; } \
    || die "apt-get install docker.io failed"
  for t in dockerd containerd runc; do command -v "$t" >/dev/null 2>&1 || die "docker.io installed but $t is still missing"; done
}

# The pid in the pidfile, if that process is alive and really our dockerd (a recycled pid is never signalled).
our_pid() {
  local pid
  [ -s "$PIDFILE" ] || return 1
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "dockerd .*--pidfile $PIDFILE" || return 1
  printf '%s\n' "$pid"
}

answers() {
  local cli
  cli=$(docker_cli)
  [ -n "$cli" ] && [ -S "$SOCK" ] && timeout 10 "$cli" -H "$HOST" info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

do_start() {
  ensure_installed
  [ "$(id -u)" -eq 0 ] || die "the private dockerd runs as root (rootless Docker is not set up); run: sudo $0 start"
  if our_pid >/dev/null && answers; then
    return 0
  fi
  local pid
  if pid=$(our_pid); then
    # Alive but not answering: still starting (another caller's start timed out) or wedged. Wait for it once more.
    wait_until_answers "$pid" && return 0
    die "dockerd (pid $pid) runs but does not answer on $SOCK; see $LOG (stop it with: $0 stop)"
  fi
  rm -f "$PIDFILE"
  [ -S "$SOCK" ] && rm -f "$SOCK"   # stale socket of a dead dockerd
  mkdir -p "$DATA" "$EXEC" "$(dirname "$SOCK")"
  chmod 0700 "$DIR" "$DATA" "$EXEC"
  {
    printf '\n==== %s starting dockerd (%s)\n' "$(date -u +%FT%TZ)" "$(dockerd --version 2>&1)"
  } >>"$LOG"
  # setsid + no inherited lock fd: the daemon outlives this script and never holds the start/stop lock.
  setsid dockerd \
    --data-root "$DATA" \
    --exec-root "$EXEC" \
    --pidfile "$PIDFILE" \
    --host "$HOST" \
    --group root \
    --storage-driver overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs \
    --cgroup-parent veggur \
    --default-runtime runc \
    --bridge none \
    --iptables=false \
    --ip-forward=false \
    --ip-masq=false \
    --no-new-privileges \
    --containerd-namespace veggur \
    --containerd-plugins-namespace veggur-plugins \
    --log-driver json-file --log-opt max-size=10m --log-opt max-file=2 \
    --shutdown-timeout 15 \
    </dev/null >>"$LOG" 2>&1 9>&- &
  local launched=$!
  # The pidfile appears once dockerd is past its own single-instance check; until then watch the launched pid.
  wait_until_answers "$launched" || {
    say "dockerd did not answer on $SOCK within ${START_TIMEOUT}s; last lines of $LOG:"
    tail -n 15 "$LOG" >&2
    kill -TERM "$launched" 2>/dev/null || true
    exit 1
  }
}

# Polls until `docker info` answers, the process dies, or START_TIMEOUT passes.
wait_until_answers() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT)) delay=0.05
  while [ $SECONDS -lt $deadline ]; do
    answers && return 0
    kill -0 "$pid" 2>/dev/null || { say "dockerd (pid $pid) exited during start-up"; tail -n 15 "$LOG" >&2; exit 1; }
    sleep "$delay"
    delay=$(awk -v d="$delay" 'BEGIN { d *= 2; if (d > 0.5) d = 0.5; print d }')
  done
  return 1
}

do_stop() {
  local pid deadline
  pid=$(our_pid) || { rm -f "$PIDFILE"; return 0; }
  kill -TERM "$pid"
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "dockerd (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  printf '==== %s dockerd (pid %s) stopped\n' "$(date -u +%FT%TZ)" "$pid" >>"$LOG"
  rm -f "$PIDFILE"
}

do_status() {
  local pid
  if pid=$(our_pid) && answers; then
    printf 'running pid=%s host=%s data=%s log=%s\n' "$pid" "$HOST" "$DATA" "$LOG"
    return 0
  elif [ -n "${pid:-}" ]; then
    printf 'starting-or-wedged pid=%s host=%s log=%s\n' "$pid" "$HOST" "$LOG"
    return 3
  fi
  printf 'stopped host=%s\n' "$HOST"
  return 3
}

with_lock() {
  mkdir -p "$DIR"
  chmod 0700 "$DIR"
  exec 9>>"$LOCK"
  flock -w $((START_TIMEOUT + STOP_TIMEOUT + 10)) 9 || die "could not take $LOCK"
  "$@"
}

case "${1:-}" in
  start)  with_lock do_start; printf '%s\n' "$HOST" ;;
  stop)   with_lock do_stop ;;
  status) with_lock do_status ;;
  host)   printf '%s\n' "$HOST" ;;
  *)      printf 'usage: %s start|stop|status|host\n' "$0" >&2; exit 2 ;;
esac
