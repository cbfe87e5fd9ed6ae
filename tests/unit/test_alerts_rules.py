"""Alert rules and Alertmanager config: promtool/amtool checks, unit tests, and our conventions."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from agentpress_otel._harness import alertmanager as am_harness
from agentpress_otel._harness._proc import find_binary
from conftest import need

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "stack" / "prometheus" / "rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
RULE_TESTS = sorted((RULES / "tests").glob("*.yml"))
AM_CONFIG = ROOT / "stack" / "alertmanager" / "alertmanager.yml"


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def alert_rules() -> list[dict[str, object]]:
    out = []
    for f in RULE_FILES:
        for g in yaml.safe_load(f.read_text())["groups"]:
            out += [r for r in g["rules"] if "alert" in r]
    return out


def test_promtool_check_rules() -> None:
    """promtool accepts every shipped alert rule file."""
    promtool = need(lambda: find_binary("promtool"))
    proc = run([promtool, "check", "rules", *map(str, RULE_FILES)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests() -> None:
    """The shipped rule unit tests pass under promtool."""
    promtool = need(lambda: find_binary("promtool"))
    assert RULE_TESTS
    proc = run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_tested() -> None:
    """Every alert rule appears in at least one promtool unit test."""
    tested = set()
    for f in RULE_TESTS:
        for t in yaml.safe_load(f.read_text())["tests"]:
            tested |= {a["alertname"] for a in t.get("alert_rule_test", []) if a.get("exp_alerts")}
    assert {str(r["alert"]) for r in alert_rules()} <= tested


def test_rule_conventions() -> None:
    """The expected alerts exist, each with a severity, summary, description, Grafana URL and a service name."""
    rules = alert_rules()
    names = {str(r["alert"]) for r in rules}
    for want in ("AgentRunErrorRateHigh", "LLMErrorRateHigh", "LLMLatencyP95High", "LLMCostBudgetExceeded",
                 "LLMTokenBudgetExceeded", "LLMTimeToFirstChunkRegression", "OtelCollectorDroppingData",
                 "OtelCollectorQueueNearlyFull", "ServiceTelemetryAbsent", "EventLoopLagHigh",
                 "ProcessMemoryGrowing", "DramatiqQueueBacklogGrowing"):
        assert want in names
    for r in rules:
        labels, ann = r["labels"], r["annotations"]
        assert isinstance(labels, dict) and isinstance(ann, dict)
        assert labels["severity"] in {"critical", "warning"}, r["alert"]
        assert {"summary", "description", "grafana_url"} <= set(ann), r["alert"]
        assert str(ann["grafana_url"]).startswith("http"), r["alert"]
        # service_name must come out of the expression or be set statically: Alertmanager groups and inhibits on it.
        assert "service_name" in labels or "service_name" in str(r["expr"]), r["alert"]
        assert "for" in r, r["alert"]
    # Dashboards linked from alerts exist.
    dash_uids = {yaml.safe_load(p.read_text())["uid"] for p in (ROOT / "grafana" / "dashboards").glob("*.json")}
    for r in rules:
        m = re.search(r"/d/([\w-]+)", str(r["annotations"]["grafana_url"]))  # type: ignore[index]
        assert m and m.group(1) in dash_uids, r["alert"]


def _rendered_config(tmp: Path) -> Path:
    files = {}
    for sev in am_harness.SECRET_PATHS:
        files[sev] = tmp / f"url-{sev}"
        files[sev].write_text(f"http://127.0.0.1:1/services/{sev}\n")
    cfg = tmp / "alertmanager.yml"
    cfg.write_text(am_harness.render_config(webhook_files=files))
    return cfg


def test_amtool_check_config() -> None:
    """amtool accepts the rendered Alertmanager configuration."""
    amtool = need(am_harness.amtool)
    with tempfile.TemporaryDirectory() as d:
        proc = run([amtool, "check-config", str(_rendered_config(Path(d)))])
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=critical", "service_name=api"], "slack-critical"),
    (["severity=warning", "service_name=api"], "slack-warning"),
    (["service_name=api"], "slack-warning"),
])
def test_amtool_routes(labels: list[str], receiver: str) -> None:
    """amtool routes alerts of each severity to the expected receiver."""
    amtool = need(am_harness.amtool)
    with tempfile.TemporaryDirectory() as d:
        proc = run([amtool, "config", "routes", "test", f"--config.file={_rendered_config(Path(d))}",
                    f"--verify.receivers={receiver}", *labels])
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alertmanager_config_conventions() -> None:
    """The Alertmanager config keeps webhook URLs in secret files, groups by service and inhibits warnings."""
    text = AM_CONFIG.read_text()
    assert "hooks.slack.com" not in text and "api_url:" not in text, "webhook URLs must come from a secret file"
    doc = yaml.safe_load(text)
    route = doc["route"]
    assert route["group_by"] == ["alertname", "service_name", "severity"]
    assert route["group_wait"] and route["group_interval"] and route["repeat_interval"]
    inhibit = doc["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert {"alertname", "service_name"} <= set(inhibit["equal"])
    # Each severity has its own webhook (an incoming webhook is bound to one channel; `channel:` is ignored).
    files = {}
    for rcv in doc["receivers"]:
        for sc in rcv["slack_configs"]:
            assert sc["send_resolved"] is True
            files[rcv["name"]] = sc["api_url_file"]
    assert files == {"slack-critical": am_harness.SECRET_PATHS["critical"],
                     "slack-warning": am_harness.SECRET_PATHS["warning"]}
    assert len(set(files.values())) == 2


def _grouping_labels(expr: str) -> set[str]:
    """Labels an alert expression keeps: every `by (...)` clause (le is aggregated away by histogram_quantile)."""
    out: set[str] = set()
    for grp in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        out |= {g.strip() for g in grp.split(",") if g.strip()}
    out |= set(re.findall(r'label_replace\([^"]*"(\w+)"', expr))
    return out - {"le"}


def test_inhibition_equal_covers_every_label_that_tells_alerts_apart() -> None:
    """Too short an `equal` list lets a critical on one provider/model/exporter silence a warning on another."""
    equal = set(yaml.safe_load(AM_CONFIG.read_text())["inhibit_rules"][0]["equal"])
    for r in alert_rules():
        labels = _grouping_labels(str(r["expr"])) | (set(r["labels"]) - {"severity"})  # type: ignore[arg-type]
        missing = labels - equal
        assert not missing, f"{r['alert']}: inhibition ignores {sorted(missing)}"


def test_timing_overlay_only_changes_timing() -> None:
    """The fast-timing overlay used by tests changes only group timings, nothing else of the shipped config."""
    with tempfile.TemporaryDirectory() as d:
        url = Path(d) / "url"
        shipped = yaml.safe_load(am_harness.render_config(webhook_file=url))
        fast = yaml.safe_load(am_harness.render_config(webhook_file=url, timing={"group_wait": "1s",
                                                                                  "group_interval": "2s"}))
    assert fast["route"]["group_wait"] == "1s" and fast["route"]["routes"][0]["group_wait"] == "1s"
    assert "group_wait" not in fast["route"]["routes"][1]  # inherits, as shipped
    for k in ("group_wait", "group_interval"):
        fast["route"].pop(k)
        shipped["route"].pop(k)
        for r in fast["route"]["routes"] + shipped["route"]["routes"]:
            r.pop(k, None)
    assert fast == shipped


def _promql_everywhere() -> list[tuple[str, str]]:
    """(where, expression) of every alert/recording rule and every Prometheus target of every dashboard."""
    import json

    out = []
    for f in RULE_FILES:
        for g in yaml.safe_load(f.read_text())["groups"]:
            out += [(f"{f.name}: {r.get('alert') or r.get('record')}", r["expr"]) for r in g["rules"]]
    for d in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        for p in json.loads(d.read_text())["panels"]:
            out += [(f"{d.name}: {p['title']}", t["expr"]) for t in p.get("targets", [])
                    if t.get("datasource", {}).get("type") == "prometheus"]
    return out


def test_no_range_function_over_several_metric_names() -> None:
    """rate({__name__=~"a|b"}) drops __name__, so the series of a and b with the same labels collide and Prometheus
    refuses the whole expression ("vector cannot contain metrics with the same labelset"): the shipped
    OtelCollectorRefusingData never evaluated. A name regex may only add the optional `_total` suffix; sum
    several names with one rate() each (see the telemetry-pipeline rules)."""
    exprs = _promql_everywhere()
    assert len(exprs) > 50
    for where, expr in exprs:
        for name_re in re.findall(r'__name__=~"([^"]*)"', expr):
            base = name_re.removesuffix("(_total)?")
            assert not re.search(r"[|()]", base), f"{where}: {name_re!r} can match several metrics in one rate()"
