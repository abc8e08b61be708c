#!/usr/bin/env bash
# Servers some tests start on loopback: redis-server (result cache) and Azurite (Azure Blob Storage).
# The S3 tests need nothing here: they run moto's server from the Python test dependencies.
set -euo pipefail
if ! command -v redis-server >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
AZURITE_DIR="${MODELPACK_AZURITE:-$HOME/.cache/modelpack/azurite}"
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
  mkdir -p "$AZURITE_DIR"
  npm install --prefix "$AZURITE_DIR" --silent --no-audit --no-fund azurite@3 >/dev/null
fi
