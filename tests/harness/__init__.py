"""Test-only helpers (an OTLP receiver, a throw-away Redis, the checkout root).

They live beside the tests, not in the wheel: the package keeps only what its CLI runs
(``agentpress_otel._harness``). Imported as ``harness.X`` because pytest puts ``tests/`` on ``sys.path``
(the benchmarks add it themselves).
"""

from __future__ import annotations

from pathlib import Path

#: The checkout the tests run from (docs, browser/, deploy files as committed).
REPO_ROOT = Path(__file__).resolve().parents[2]
