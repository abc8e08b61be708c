#!/usr/bin/env bash
# Start a container engine that speaks the Docker Engine API (podman), and make the local base image the
# image tests build FROM. Idempotent: run it as often as you like. Prints `export DOCKER_HOST=...`.
#
#   eval "$(scripts/container-engine.sh)"
#
# No registry is reachable on the build machines, so the base is Debian bookworm (minbase + python3),
# made with debootstrap and imported once; the engine keeps it between runs.
set -euo pipefail
SOCK_DIR=${MODELPACK_ENGINE_DIR:-/tmp/modelpack-engine}
SOCK="$SOCK_DIR/podman.sock"
BASE=${MODELPACK_TEST_BASE:-localhost/modelpack-base:bookworm}

log() { echo "container-engine: $*" >&2; }

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing podman, runc, debootstrap"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >&2
fi

# crun fails on setrlimit and hybrid cgroups here; runc with modest ulimits works.
mkdir -p /etc/containers
if ! grep -qs 'runtime = "runc"' /etc/containers/containers.conf; then
  cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
CONF
fi

mkdir -p "$SOCK_DIR"
if ! curl -s --unix-socket "$SOCK" http://d/_ping 2>/dev/null | grep -q OK; then
  log "starting podman API service on $SOCK"
  rm -f "$SOCK"
  nohup podman system service --time=0 "unix://$SOCK" > "$SOCK_DIR/service.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -s --unix-socket "$SOCK" http://d/_ping 2>/dev/null | grep -q OK && break
    sleep 0.1
  done
fi

if ! podman image exists "$BASE"; then
  log "creating base image $BASE with debootstrap (about 40 s)"
  ROOTFS=$(mktemp -d)
  debootstrap --variant=minbase --include=python3 bookworm "$ROOTFS" http://deb.debian.org/debian >&2
  tar -C "$ROOTFS" -c . | podman import - "$BASE" >&2
  rm -rf "$ROOTFS"
fi

echo "export DOCKER_HOST=unix://$SOCK"
