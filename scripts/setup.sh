#!/usr/bin/env bash
# One set-up for a fresh machine: Debian packages, the Python venv, our Collector build, the browser bundle.
# Idempotent and quick when nothing changed (each step keeps a stamp of its inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# --- 1. Debian packages: real Prometheus/Alertmanager/Redis/Chromium for the tests and `agentpress-otel stack`.
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
{ command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null; } || missing+=(prometheus-alertmanager)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
if [ "${APOTEL_SKIP_APT:-}" != "1" ] && [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these as services; tests run their own instances on free ports.
  for svc in prometheus prometheus-alertmanager redis-server prometheus-node-exporter; do
    (command -v systemctl >/dev/null && $SUDO systemctl stop "$svc" 2>/dev/null) || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# --- 2. Python: one venv with the package and its dev extras, pinned in pyproject.toml.
PY=${PYTHON:-python3}
stamp=.venv/.apotel-stamp
# setup.py and the C pre-check too: `pip install -e` builds the extension in place, so a change to it needs a rerun.
want=$(cat pyproject.toml setup.py src/agentpress_otel/redaction/_precheck.c | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  log "creating .venv and installing agentpress-otel[dev]"
  [ -x .venv/bin/python ] || $PY -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".[dev]"
  echo "$want" > $stamp
fi

# --- 3. Our Collector distribution (reuses the build while the manifest is unchanged).
if [ -x scripts/build-collector.sh ] && [ "${APOTEL_SKIP_COLLECTOR:-}" != "1" ]; then
  scripts/build-collector.sh
fi

# --- 4. Browser bundle.
if [ -x scripts/setup-browser.sh ] && [ "${APOTEL_SKIP_BROWSER:-}" != "1" ]; then
  scripts/setup-browser.sh
fi
log "ready"
