#!/usr/bin/env bash
# Build our Collector distribution (collector-config/builder-config.yaml) into bin/otelcol-apotel.
#
# The build is reused when nothing that affects it changed: we store a hash of the manifest, the
# builder version and the Go version next to the binary (bin/otelcol-apotel.sha256).
#
# Usage: scripts/build-collector.sh [--force]
# Env:   OCB_VERSION (default: the core version pinned in the manifest), GOFLAGS (default -trimpath),
#        BUILD_LOG (default bin/otelcol-apotel.build.log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MANIFEST=collector-config/builder-config.yaml
BIN_DIR="$ROOT/bin"
OUT="$BIN_DIR/otelcol-apotel"
HASH_FILE="$OUT.sha256"
BUILD_DIR=collector-config/_build        # must match dist.output_path in the manifest
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

command -v go >/dev/null || { echo "go not found: install Go >= 1.25 (see docs/pipeline.md)" >&2; exit 2; }

# The builder version must equal the core version in the manifest (strict versioning).
OCB_VERSION="${OCB_VERSION:-v$(sed -n 's#.*go.opentelemetry.io/collector/receiver/otlpreceiver \(v[0-9.]*\).*#\1#p' "$MANIFEST" | head -1 | tr -d v)}"
[[ "$OCB_VERSION" == v* ]] || OCB_VERSION="v$OCB_VERSION"

want_hash="$( { cat "$MANIFEST"; echo "ocb=$OCB_VERSION"; go env GOVERSION; } | sha256sum | cut -d' ' -f1)"
if [[ $FORCE == 0 && -x "$OUT" && -f "$HASH_FILE" && "$(cat "$HASH_FILE")" == "$want_hash" ]]; then
  echo "otelcol-apotel up to date ($OUT)"
  exit 0
fi

mkdir -p "$BIN_DIR"
BUILDER="$BIN_DIR/builder-$OCB_VERSION"
if [[ ! -x "$BUILDER" ]]; then
  echo "installing OpenTelemetry Collector Builder $OCB_VERSION ..."
  # GOBIN keeps the builder inside bin/ (git-ignored) instead of ~/go/bin.
  GOBIN="$BIN_DIR/.ocb-$OCB_VERSION" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
  mv "$BIN_DIR/.ocb-$OCB_VERSION/builder" "$BUILDER"
  rmdir "$BIN_DIR/.ocb-$OCB_VERSION"
fi

export GOFLAGS="${GOFLAGS:--trimpath}"
export CGO_ENABLED=0
start=$(date +%s)
echo "building otelcol-apotel (this takes several minutes on 2 cores) ..."
rm -f "$HASH_FILE"
"$BUILDER" --config "$MANIFEST"
install -m 0755 "$BUILD_DIR/otelcol-apotel" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
echo "$want_hash" > "$HASH_FILE"
echo "built $OUT in $(( $(date +%s) - start ))s (builder run only)"
"$OUT" --version
