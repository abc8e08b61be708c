#!/usr/bin/env bash
# Start a container engine that speaks the Docker Engine API (podman), and make the local base image the
# image tests build FROM. Idempotent: run it as often as you like. Prints `export DOCKER_HOST=...`.
#
#   eval "$(scripts/container-engine.sh)"
#   scripts/container-engine.sh mirror    # only print the Debian mirror the base image would come from
#
# No registry is reachable on the build machines, so the base is Debian bookworm (minbase + python3),
# made with debootstrap and imported once; the engine keeps it between runs.
set -euo pipefail
SOCK_DIR=${MODELPACK_ENGINE_DIR:-/tmp/modelpack-engine}
SOCK="$SOCK_DIR/podman.sock"
BASE=${MODELPACK_TEST_BASE:-localhost/modelpack-base:bookworm}
APT_ETC=${MODELPACK_APT_ETC:-/etc/apt}  # where apt's sources are read from (tests point it elsewhere)

log() { echo "container-engine: $*" >&2; }

# The Debian mirror this machine's apt already uses (the repository names none): the first URL, from a deb822
# `URIs:` line (*.sources) or a classic `deb [options] URL suite ...` line (sources.list, *.list), whose path
# ends in /debian, so that -security and third-party repositories are passed over. Prints nothing if none.
debian_mirror() {
  local files=() f
  for f in "$APT_ETC/sources.list" "$APT_ETC"/sources.list.d/*.list "$APT_ETC"/sources.list.d/*.sources; do
    [ -r "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk '
    /^[[:space:]]*#/ { next }
    /^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i; next }
    /^[[:space:]]*deb[[:space:]]/ {
      for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { print $i; break }
    }
  ' "${files[@]}" | grep -E '^(https?|file)://[^[:space:]]*/debian/?$' | sed -n '1{s#/$##;p;}' || true
}

no_mirror() {
  log "no Debian mirror found in $APT_ETC/sources.list or $APT_ETC/sources.list.d/ (a deb822 'URIs:' line or a"
  log "classic 'deb URL suite' line whose URL ends in /debian); add the mirror this machine uses and run again."
  exit 2
}

if [ "${1:-}" = mirror ]; then
  MIRROR=$(debian_mirror)
  [ -n "$MIRROR" ] || no_mirror
  echo "$MIRROR"
  exit 0
fi

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
if ! curl -s --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null | grep -q OK; then
  log "starting podman API service on $SOCK"
  rm -f "$SOCK"
  nohup podman system service --time=0 "unix://$SOCK" > "$SOCK_DIR/service.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -s --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null | grep -q OK && break
    sleep 0.1
  done
fi

if ! podman image exists "$BASE"; then
  log "creating base image $BASE with debootstrap (about 40 s)"
  MIRROR=$(debian_mirror)
  [ -n "$MIRROR" ] || no_mirror
  ROOTFS=$(mktemp -d)
  debootstrap --variant=minbase --include=python3 bookworm "$ROOTFS" "$MIRROR" >&2
  tar -C "$ROOTFS" -c . | podman import - "$BASE" >&2
  rm -rf "$ROOTFS"
fi

echo "export DOCKER_HOST=unix://$SOCK"
