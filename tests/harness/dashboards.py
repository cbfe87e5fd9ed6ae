"""Walk Grafana dashboard JSON for its PromQL expressions (the tests that check what dashboards query)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def dashboard_exprs(obj: Any, keys: tuple[str, ...] = ("expr", "mainExpr")) -> Iterator[str]:
    """Every query string under one of ``keys`` anywhere in ``obj`` (panels, targets, template variables)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in keys and isinstance(v, str):
                yield v
            else:
                yield from dashboard_exprs(v, keys)
    elif isinstance(obj, list):
        for v in obj:
            yield from dashboard_exprs(v, keys)
