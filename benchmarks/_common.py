"""Shared helpers for the benchmark scripts: medians over repeats, a ratio table, JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def per_call_us(fn: Callable[[], Any], *, n: int, repeats: int = 5, warmup: int = 200) -> float:
    """Median over ``repeats`` of the mean cost of one ``fn()`` call, in microseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }


def report(area: str, rows: list[dict[str, Any]], *, details: dict[str, Any] | None = None) -> None:
    """Print a table (name, value, unit, baseline, ratio, goal) and write results/<area>.json.

    ``details`` (raw measurements behind the rows) are kept in the JSON for later comparison.
    """
    print(f"\n== {area}")
    print(f"{'benchmark':58} {'value':>12} {'baseline':>12} {'ratio':>8}  goal")
    for r in rows:
        ratio = r.get("ratio")
        value = float("nan") if r.get("value") is None else r["value"]
        baseline = "-" if r.get("baseline") is None else format(r["baseline"], ".2f")
        print(
            f"{r['name']:58} {value:>10.2f}{r.get('unit', ''):>2} {baseline:>12}"
            f" {'-' if ratio is None else format(ratio, '.2f'):>8}  {r.get('goal', '')}"
        )
    RESULTS.mkdir(exist_ok=True)
    out: dict[str, Any] = {"area": area, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), "rows": rows}
    if details:
        out["details"] = details
    (RESULTS / f"{area}.json").write_text(json.dumps(out, indent=2))
