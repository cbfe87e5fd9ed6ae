"""``agentpress-otel doctor`` (the installed command's module, a real subprocess) names where the kill switch,
the price file and the redaction key came from: variables formerly read outside the options table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

KEY = "doctor-shared-key-0123456789"


def _rows(stdout: str) -> dict[str, list[str]]:
    """The configuration table's rows: option -> [value, source] (rich draws cells between │)."""
    return {ln.split("│")[1].strip(): [c.strip() for c in ln.split("│")[2:-1]]
            for ln in stdout.splitlines() if ln.startswith("│") and ln.count("│") >= 4}


def test_doctor_names_the_variables_formerly_read_outside_the_table(tmp_path: Path) -> None:
    """A disabled setup with a price file and a shared hash key: doctor shows each with its variable, masks the
    key, warns that instrument() would do nothing, and skips the endpoint check."""
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"m": {"input": 1.0, "output": 2.0}}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    env.update({"OTEL_SDK_DISABLED": "true", "AGENTPRESS_OTEL_PRICES_FILE": prices.name,
                "AGENTPRESS_OTEL_REDACT_HASH_KEY": KEY, "AGENTPRESS_OTEL_AGENTPRESS_MODULES": "fork.tm,fork.rp"})
    proc = subprocess.run([sys.executable, "-m", "agentpress_otel", "doctor", "--timeout", "1"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    rows = _rows(proc.stdout)
    assert rows["disabled"] == ["True", "OTEL_SDK_DISABLED"], proc.stdout
    assert rows["prices_file"] == ["p.json", "AGENTPRESS_OTEL_PRICES_FILE"]  # relative to cwd
    assert rows["redact_hash_key"] == ["***", "AGENTPRESS_OTEL_REDACT_HASH_KEY"]
    assert rows["agentpress_modules"][-1] == "AGENTPRESS_OTEL_AGENTPRESS_MODULES", proc.stdout
    assert "fork.tm" in rows["agentpress_modules"][0]
    assert KEY not in out
    assert "OTEL_SDK_DISABLED is set: instrument() will do nothing" in " ".join(proc.stdout.split())
    assert "Checking" not in proc.stdout  # disabled: no test span is sent
