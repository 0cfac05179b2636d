#!/usr/bin/env bash
# Reference runner for one analysis environment (the agent does the same through docker-java):
#   container/run-env.sh VM_SOCKET_DIR NAME [--uid N] [--image TAG] [--replace] [-- CMD...]
# Starts container NAME with only VM_SOCKET_DIR mounted (read-only, at /vmi), then runs CMD in it
# (default: veggur vmi ps --socket /vmi/vmi.sock). The container keeps running; remove it with
#   docker -H "$(container/dockerd.sh host)" rm -f NAME
#
# The container runs as an unprivileged uid that owns VM_SOCKET_DIR (mode stays 0700): --uid N chowns the directory
# to N:N and runs as N:N; the default N is 200000 + a hash of NAME (the agent allocates unique ones instead). Not
# root: a uid 0 process, even with every capability dropped, owns the root-owned RAM file and can reopen the
# granted read-only memory descriptor through /proc/self/fd for writing (see container/README.md).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf 'veggur-env: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
now_ms() { date +%s%3N; }

[ $# -ge 2 ] || die "usage: $0 VM_SOCKET_DIR NAME [--uid N] [--image TAG] [--replace] [-- CMD...]"
SOCKET_DIR=$1 NAME=$2
shift 2
UID_N= IMAGE=${VEGGUR_IMAGE:-} REPLACE=0 CMD=()
while [ $# -gt 0 ]; do
  case "$1" in
    --uid) UID_N=${2:?}; shift 2 ;;
    --image) IMAGE=${2:?}; shift 2 ;;
    --replace) REPLACE=1; shift ;;
    --) shift; CMD=("$@"); break ;;
    *) die "unknown argument $1" ;;
  esac
done
[ ${#CMD[@]} -gt 0 ] || CMD=(veggur vmi ps --socket /vmi/vmi.sock)
[[ $NAME =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ ]] || die "bad environment name: $NAME"
[ -d "$SOCKET_DIR" ] || die "no such socket directory: $SOCKET_DIR"
SOCKET_DIR=$(cd "$SOCKET_DIR" && pwd -P)
[ -S "$SOCKET_DIR/vmi.sock" ] || die "no introspection socket in $SOCKET_DIR (is the VM running?)"
[ "$(stat -c %a "$SOCKET_DIR")" = 700 ] || die "$SOCKET_DIR must be mode 0700"
if [ -z "$UID_N" ]; then
  UID_N=$((200000 + $(printf '%s' "$NAME" | cksum | cut -d' ' -f1) % 100000))
fi
[[ $UID_N =~ ^[0-9]+$ ]] && [ "$UID_N" -gt 0 ] && [ "$UID_N" -lt 4294967294 ] || die "--uid must be a non-root uid"

DOCKER_HOST=$("$HERE/dockerd.sh" start | tail -n 1)
export DOCKER_HOST
DOCKER=/usr/bin/docker; [ -x "$DOCKER" ] || DOCKER=$(command -v docker)
if [ -z "$IMAGE" ]; then
  IMAGE=$("$DOCKER" images --filter label=io.veggur.inputs --format '{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}' \
    | sort -r | head -n 1 | cut -f2)
  [ -n "$IMAGE" ] || die "no veggur-tools image; build one: container/build-image.sh cli/target/veggur.jar"
fi

if "$DOCKER" container inspect "$NAME" >/dev/null 2>&1; then
  [ $REPLACE -eq 1 ] || die "container $NAME exists (use --replace, or docker rm -f $NAME)"
  "$DOCKER" rm -f "$NAME" >/dev/null
fi

# The directory belongs to the environment's uid; its mode stays 0700, so nobody else on the host but root enters.
if [ "$(stat -c %u:%g "$SOCKET_DIR")" != "$UID_N:$UID_N" ]; then
  [ "$(id -u)" -eq 0 ] || die "$SOCKET_DIR must be owned by $UID_N:$UID_N (chown needs root)"
  chown "$UID_N:$UID_N" "$SOCKET_DIR"
fi

t0=$(now_ms)
"$DOCKER" run -d --name "$NAME" \
  --label io.veggur.env="$NAME" --label io.veggur.socket-dir="$SOCKET_DIR" \
  --user "$UID_N:$UID_N" \
  --network none \
  --ipc none \
  --cap-drop ALL \
  --security-opt no-new-privileges \
  --read-only \
  --tmpfs /tmp:rw,nosuid,nodev,noexec,size=64m \
  --pids-limit 128 \
  --memory 512m --memory-swap 512m \
  --ulimit nofile=1024:1024 \
  --restart no \
  --stop-timeout 5 \
  --mount "type=bind,source=$SOCKET_DIR,target=/vmi,readonly" \
  "$IMAGE" >/dev/null
t1=$(now_ms)
say "started $NAME ($IMAGE, uid $UID_N) in $((t1 - t0)) ms"
set +e
"$DOCKER" exec "$NAME" "${CMD[@]}"
rc=$?
set -e
say "${CMD[*]} exited $rc after $(($(now_ms) - t1)) ms"
exit $rc
