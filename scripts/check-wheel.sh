#!/usr/bin/env bash
# CI stage "installed like a user": build the wheel and the sdist, install the wheel (not editable) into a fresh
# venv, and from a folder outside the checkout run the demo, `stack up` (Collector from the user cache that
# scripts/build-collector.sh fills), `doctor` against it and `stack down`. Part of scripts/test.sh (`make test`).
#
# Fast on a warm machine: pip reuses its cache, the Collector build is found in ~/.cache/agentpress-otel/<key>/.
# Env: APOTEL_WHEEL_DIR (default: a temp dir, removed at the end).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '\033[1;34m[wheel]\033[0m %s\n' "$*"; }

WORK="${APOTEL_WHEEL_DIR:-$(mktemp -d /tmp/apotel-wheel-XXXXXX)}"
STATE="$WORK/state"
cleanup() {
  # Always stop what this stage started (its own state folder), then remove the scratch folder.
  [[ -x "$WORK/venv/bin/agentpress-otel" ]] && APOTEL_STATE_DIR="$STATE" "$WORK/venv/bin/agentpress-otel" stack down >/dev/null 2>&1 || true
  if [[ -z "${APOTEL_WHEEL_DIR:-}" ]]; then rm -rf "$WORK"; fi  # (an && list here made the exit status 1 with a kept dir)
}
trap cleanup EXIT

log "building wheel and sdist"
"$ROOT/.venv/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
whl=$(ls "$WORK"/dist/agentpress_otel-*.whl)
ls "$WORK"/dist/agentpress_otel-*.tar.gz >/dev/null

log "fresh venv, pip install $(basename "$whl")[all] (not editable)"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "$whl[all]"

# From a folder with no checkout above it: nothing may be found through a repository.
mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
export APOTEL_STATE_DIR="$STATE"
unset PYTHONPATH
for v in $(env | sed -n 's/^\(OTEL_[A-Z_]*\|AGENTPRESS_OTEL_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
bin="$WORK/venv/bin"

log "the redactor's compiled pre-check is in the wheel (built from the sdist) and active"
"$bin/python" -c 'from agentpress_otel.redaction import Redactor, _needles; import sys
assert _needles.CLEAN is not None and Redactor()._clean is not None, "no compiled pre-check"
assert "site-packages" in _needles.__file__, _needles.__file__' \
  || { echo "the wheel lacks agentpress_otel.redaction._precheck (setup.py ext_modules, MANIFEST.in)" >&2; exit 1; }

log "demo (in-memory)"
"$bin/agentpress-otel" demo --threads 1 >"$WORK/demo.log" 2>&1 || { tail -40 "$WORK/demo.log"; exit 1; }

log "zero-code start: opentelemetry-instrument finds our distro and configurator"
PATH="$bin:$PATH" OTEL_TRACES_EXPORTER=console OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \
  "$bin/opentelemetry-instrument" python -c 'from agentpress_otel._setup import current; assert current() is not None' \
  || { echo "opentelemetry-instrument did not run instrument()" >&2; exit 1; }

log "stack up (Collector from the user cache, any free ports)"
"$bin/agentpress-otel" stack up --no-build --grpc-port 0 --http-port 0 --browser-port 0 \
  --prometheus-port 0 --alertmanager-port 0 | tee "$WORK/up.log"
grpc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["components"][0]["grpc"])' "$STATE/stack.json")
collector_bin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["components"][0]["argv"][0])' "$STATE/stack.json")
case "$collector_bin" in
  "${XDG_CACHE_HOME:-$HOME/.cache}"/agentpress-otel/*) log "Collector from the user cache: $collector_bin" ;;
  *) echo "the Collector did not come from the user cache: $collector_bin" >&2; exit 1 ;;
esac

log "doctor against $grpc"
"$bin/agentpress-otel" doctor --endpoint "$grpc"

log "demo exporting to the stack"
"$bin/agentpress-otel" demo --threads 1 --endpoint "$grpc" >"$WORK/demo-export.log" 2>&1 \
  || { tail -40 "$WORK/demo-export.log"; exit 1; }

log "stack down"
"$bin/agentpress-otel" stack down
log "ok"
