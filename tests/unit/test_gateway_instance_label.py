"""The gateway names itself on every series it emits (issue 17): its own otelcol_* self-metrics carry otelcol_instance
from OTELCOL_INSTANCE_ID, like its span-metrics and service-graph series, and every dashboard query over otelcol_*
aggregates the label away. (Live check on the real Collector: tests/integration/test_agent_tier.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from harness.dashboards import dashboard_exprs

ROOT = Path(__file__).resolve().parents[2]
AGG = re.compile(r"\b(sum|max|min|avg|count|topk|bottomk|quantile)\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(")


def _outside_aggregations(expr: str) -> str:
    """``expr`` with every aggregation ``op by (...) ( ... )`` cut out (matching parentheses)."""
    while m := AGG.search(expr):
        depth, i = 1, m.end()
        while i < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        expr = expr[: m.start()] + expr[i:]
    return expr


def test_self_metrics_carry_the_gateway_instance() -> None:
    """The telemetry resource sets otelcol.instance from OTELCOL_INSTANCE_ID and the pull exporter labels with it."""
    cfg = yaml.safe_load((ROOT / "collector-config" / "config.yaml").read_text())
    telemetry = cfg["service"]["telemetry"]
    assert "OTELCOL_INSTANCE_ID" in str(telemetry["resource"]["otelcol.instance"])
    (reader,) = telemetry["metrics"]["readers"]
    assert reader["pull"]["exporter"]["prometheus"]["with_resource_constant_labels"]["included"] == ["otelcol.instance"]
    # The span-metrics label reads the same variable (one name for one gateway).
    labels = str(cfg["processors"]["transform/metric_labels"])
    assert '"otelcol.instance"' in labels and "OTELCOL_INSTANCE_ID" in labels


def test_dashboards_aggregate_the_instance_away_from_self_metrics() -> None:
    """Every otelcol_* selector in a dashboard sits inside an aggregation that does not keep otelcol_instance."""
    seen = 0
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        for expr in dashboard_exprs(json.loads(path.read_text())):
            if "otelcol_" not in expr or expr.startswith("label_values"):
                continue
            seen += 1
            assert "otelcol_instance" not in expr, f"{path.name}: {expr}"
            assert "otelcol_" not in _outside_aggregations(expr), f"{path.name}: not aggregated: {expr}"
    assert seen >= 10, seen


def test_the_aggregation_check_catches_a_bare_selector() -> None:
    """The helper above really finds a selector left outside any aggregation."""
    assert "otelcol_" not in _outside_aggregations('max by (exporter) (otelcol_a) / max by (exporter) (otelcol_b)')
    assert "otelcol_" in _outside_aggregations('sum by (x) (rate(a[5m])) / otelcol_exporter_queue_capacity')
