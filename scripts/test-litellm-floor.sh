#!/usr/bin/env bash
# The AgentPress backend test at the floor of the supported ranges: AgentPress's own pins (classic layout:
# litellm 1.75.2, openai 1.90.0, structlog 25.4.0, dramatiq 1.18.0, redis 5.2.1) installed with our `all`
# extra in a second venv, so pip must resolve our ranges against them. The main venv has the newest.
# Reuses the venv while pyproject.toml is unchanged, and pip's cache otherwise (about 1.5 min cold).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-litellm-floor
PINS=("litellm==1.75.2" "openai==1.90.0" "structlog==25.4.0" "dramatiq[redis]==1.18.0" "redis==5.2.1")
stamp=$VENV/.apotel-stamp
want=$( (cat pyproject.toml; echo "${PINS[@]}") | sha256sum | cut -c1-16)
if [ ! -x $VENV/bin/python ] || [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  echo "[litellm-floor] creating $VENV with ${PINS[*]}"
  [ -x $VENV/bin/python ] || "${PYTHON:-python3}" -m venv $VENV
  $VENV/bin/pip install -q --upgrade pip >/dev/null
  $VENV/bin/pip install -q -e ".[all,test]" "${PINS[@]}"
  echo "$want" > $stamp
fi
$VENV/bin/python -c "import importlib.metadata as m; print('[litellm-floor]', *(f'{p} {m.version(p)}' for p in ('litellm', 'openai', 'structlog', 'dramatiq', 'redis')))"
exec $VENV/bin/pytest -q -p no:cacheprovider tests/integration/test_agentpress_backend.py "$@"
