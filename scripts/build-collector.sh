#!/usr/bin/env bash
# Build our Collector distribution (collector-config/builder-config.yaml) into the per-user cache
# ~/.cache/agentpress-otel/<key>/otelcol-apotel, the same cache `agentpress-otel stack up` and the tests use
# (agentpress_otel/_harness/collector_build.py is the one build path; <key> hashes the manifest, the builder
# version and the Go version, so an unchanged manifest is not rebuilt). bin/otelcol-apotel is a symlink to it.
#
# Usage: scripts/build-collector.sh [--force]
# Env:   OCB_VERSION (default: the core version pinned in the manifest), GOFLAGS (default -trimpath),
#        XDG_CACHE_HOME (default ~/.cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v go >/dev/null || { echo "go not found: install Go >= 1.25 (see docs/pipeline.md)" >&2; exit 2; }

PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || PY=python3
out="$(PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m agentpress_otel._harness.collector_build "$@" | tail -1)"
mkdir -p bin
ln -sfn "$out" bin/otelcol-apotel
echo "otelcol-apotel: $out (bin/otelcol-apotel links to it)"
