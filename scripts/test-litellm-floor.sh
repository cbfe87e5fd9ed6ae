#!/usr/bin/env bash
# The AgentPress backend test at the floor of the supported LiteLLM range: AgentPress's own pins
# (litellm 1.75.2, openai 1.90.0) in a second venv. The main venv (dev extras) has the newest LiteLLM.
# Reuses the venv while pyproject.toml is unchanged, and pip's cache otherwise (about 1.5 min cold).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-litellm-floor
PINS=("litellm==1.75.2" "openai==1.90.0")
stamp=$VENV/.apotel-stamp
want=$( (cat pyproject.toml; echo "${PINS[@]}") | sha256sum | cut -c1-16)
if [ ! -x $VENV/bin/python ] || [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  echo "[litellm-floor] creating $VENV with ${PINS[*]}"
  [ -x $VENV/bin/python ] || "${PYTHON:-python3}" -m venv $VENV
  $VENV/bin/pip install -q --upgrade pip >/dev/null
  $VENV/bin/pip install -q -e ".[structlog,dramatiq,redis,cli,test]" "${PINS[@]}"
  echo "$want" > $stamp
fi
$VENV/bin/python -c "import importlib.metadata as m; print('[litellm-floor] litellm', m.version('litellm'), 'openai', m.version('openai'))"
exec $VENV/bin/pytest -q -p no:cacheprovider tests/integration/test_agentpress_backend.py "$@"
