#!/usr/bin/env bash
# Install the browser package's pinned npm dependencies and build browser/dist/ (idempotent); also the
# pinned query grammars of tests/querylang.
#
# - `npm ci` installs exactly package-lock.json; skipped when node_modules already matches the lock.
# - esbuild's install script is not needed: its platform binary comes as an optional dependency.
# - No browser is downloaded: the e2e test drives Debian's /usr/bin/chromium through playwright-core.
# Usage: scripts/setup-browser.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/browser"

command -v node >/dev/null || { echo "node not found: apt-get install -y nodejs npm" >&2; exit 2; }
command -v npm >/dev/null || { echo "npm not found: apt-get install -y npm" >&2; exit 2; }

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.apotel-lock.sha256
if [[ "${1:-}" == "--force" || ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
  npm ci --no-audit --no-fund
  echo "$lock_hash" > "$stamp"
else
  echo "browser/node_modules up to date"
fi

node scripts/check-deps.mjs
node scripts/build.mjs

# Grafana's own LogQL/TraceQL grammars for the dashboard query tests (tests/unit/test_dashboards_querylang.py),
# pinned by tests/querylang/package-lock.json; same stamp rule as above.
cd "$ROOT/tests/querylang"
ql_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
ql_stamp=node_modules/.apotel-lock.sha256
if [[ "${1:-}" == "--force" || ! -f "$ql_stamp" || "$(cat "$ql_stamp")" != "$ql_hash" ]]; then
  npm ci --no-audit --no-fund
  echo "$ql_hash" > "$ql_stamp"
else
  echo "tests/querylang/node_modules up to date"
fi
