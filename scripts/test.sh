#!/usr/bin/env bash
# The whole test suite: set-up, lint, strict type check, then every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests benchmarks grafana
echo "== mypy --strict"; .venv/bin/mypy
# Installed like a user: wheel + sdist, fresh venv, demo / stack up / doctor / stack down from another folder.
echo "== wheel"; scripts/check-wheel.sh
if [ -f browser/package.json ]; then echo "== browser unit tests"; (cd browser && npm test --silent); fi
echo "== pytest"
set +e
.venv/bin/pytest -q -p no:cacheprovider "$@"
rc=$?
if [ $rc -eq 0 ] && [ $# -eq 0 ]; then
  echo "== the AgentPress backend test at the floor of the supported LiteLLM range"
  scripts/test-litellm-floor.sh
  rc=$?
fi
set -e
# pytest exits 5 when it collected nothing: that is a failure for us, not a pass.
exit $rc
