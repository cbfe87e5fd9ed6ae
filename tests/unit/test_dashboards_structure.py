"""Offline checks of grafana/: the structure Grafana needs, PromQL that parses, LogQL/TraceQL on names we emit.

Grafana itself is not available in tests, so these checks stand in for "the dashboard loads": every panel has a
unique id and a grid position, every datasource reference is provisioned, every variable used is defined.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from test_dashboards_querylang import QueryError, parse_logql, parse_traceql

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
PROVISIONING = GRAFANA / "provisioning"

# Grafana's built-in variables (https://grafana.com/docs/grafana/latest/dashboards/variables/add-template-variables/).
BUILTIN_VARS = {"__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__range_ms",
                "__auto",
                "__from", "__to", "__dashboard", "__name", "__org", "__user", "__timeFilter", "timeFilter",
                "__all", "__value", "__field", "__series", "__data", "__cell", "__tags", "__trace", "__span"}
VAR_RE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")

# Structured-metadata / label names that our log pipeline produces in Loki (OTLP attribute dots -> "_").
LOKI_FIELDS = {
    "service_name", "deployment_environment_name", "trace_id", "span_id", "severity_text", "detected_level",
    "agentpress_thread_id", "agentpress_project_id", "agentpress_agent_run_id", "agentpress_request_id",
    "user_id", "session_id", "agentpress_telemetry_source", "exception_type", "exception_message",
    "exception_stacktrace", "code_function_name", "browser_page_view_type",
}
# Span attributes agreed in docs/team-brief.md "Names" (the context processor and cost code are other issues');
# the util-genai ones are added by _emitted_genai_attributes() from what util-genai really puts on spans.
CONTRACT_SPAN_ATTRS = {
    "agentpress.project.id", "agentpress.thread.id", "agentpress.agent_run.id", "agentpress.request.id",
    "user.id", "gen_ai.conversation.id", "session.id", "agentpress.llm.cost_usd",
    # set by the Collector (resource/browser) and by the browser SDK
    "agentpress.telemetry.source", "service.name", "http.response.status_code",
    "error.type",  # HTTP semconv, on failed server/client spans (FastAPI middleware, browser fetch/XHR)
}
# Resource attributes (TraceQL `resource.` scope): the SDK's resource, what the Collector adds, the browser's.
RESOURCE_ATTRS = {"service.name", "service.namespace", "service.instance.id", "service.version",
                  "deployment.environment.name", "agentpress.telemetry.source", "telemetry.sdk.name",
                  "telemetry.sdk.language", "telemetry.sdk.version", "telemetry.distro.name", "host.name"}
# Where names we emit are documented (docs/telemetry.md and the pages it points to, plus the browser package's).
TELEMETRY_DOCS = [ROOT / "docs" / n for n in ("telemetry.md", "genai.md", "logging.md", "pipeline.md", "browser.md")]
# Fields Loki derives itself rather than from our attributes.
LOKI_DERIVED = {"detected_level"}


def load_dashboards() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, json.loads(p.read_text())) for p in DASHBOARD_FILES]


def all_panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def targets(dash: dict[str, Any], ds_type: str) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in all_panels(dash) for t in p.get("targets", [])
            if t.get("datasource", p.get("datasource", {})).get("type") == ds_type]


def substitute(expr: str) -> str:
    """Replace Grafana variables with what they become at query time (All = .*), for parsing and running."""
    expr = (expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
            .replace("$__auto", "1m"))
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", ".*", expr)


def provisioned_datasources() -> dict[str, str]:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())
    return {d["uid"]: d["type"] for d in doc["datasources"]}


def test_generated_files_are_current() -> None:
    """The committed dashboard JSON is what build_dashboards.py generates now."""
    proc = subprocess.run([sys.executable, str(GRAFANA / "build_dashboards.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_expected_dashboards_exist() -> None:
    """Every expected dashboard is present."""
    titles = {d["title"] for _, d in load_dashboards()}
    for want in ("Agent overview", "LLM usage and cost", "Thread explorer", "Service health (RED)", "Frontend",
                 "Telemetry pipeline"):
        assert any(want in t for t in titles), (want, titles)


def test_dashboard_uids_unique_and_stable() -> None:
    """Dashboard uids are unique and short lowercase slugs."""
    uids = [d["uid"] for _, d in load_dashboards()]
    assert len(uids) == len(set(uids))
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_panel_structure(path: Path) -> None:
    """Each dashboard's panels have unique ids, a title, a query and non-overlapping places inside the grid."""
    dash = json.loads(path.read_text())
    assert dash["schemaVersion"] >= 36
    panels = all_panels(dash)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        assert p["title"]
        if p["type"] != "row":
            assert p["targets"], f"{p['title']} has no query"
    # No two panels overlap on the grid (Grafana would push one down, silently changing the layout).
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps"
                cells.add((x, y))


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_datasources_are_provisioned(path: Path) -> None:
    """Every panel and target names a provisioned datasource of the matching type."""
    provisioned = provisioned_datasources()
    dash = json.loads(path.read_text())
    refs = [p.get("datasource") for p in all_panels(dash) if p["type"] != "row"]
    refs += [t.get("datasource") for p in all_panels(dash) for t in p.get("targets", [])]
    refs += [v.get("datasource") for v in dash["templating"]["list"] if v.get("datasource")]
    for ref in refs:
        assert ref, "panel or target without a datasource"
        assert ref["uid"] in provisioned, ref
        assert provisioned[ref["uid"]] == ref["type"], ref


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_variables_used_are_defined(path: Path) -> None:
    """Every variable a dashboard uses is defined, and before any variable query that uses it."""
    dash = json.loads(path.read_text())
    defined = {v["name"] for v in dash["templating"]["list"]}
    text = json.dumps(dash["panels"]) + json.dumps([v.get("definition", "") for v in dash["templating"]["list"]])
    used = {next(g for g in m.groups() if g) for m in VAR_RE.finditer(text)}
    missing = {u for u in used if u not in defined and u not in BUILTIN_VARS}
    assert not missing, f"{path.name} uses undefined variables {sorted(missing)}"
    # Each variable's own query may only reference variables defined before it (Grafana resolves in order).
    seen: set[str] = set()
    for v in dash["templating"]["list"]:
        refs = {next(g for g in m.groups() if g) for m in VAR_RE.finditer(v.get("definition", ""))}
        assert refs <= seen | BUILTIN_VARS, (v["name"], refs - seen)
        seen.add(v["name"])


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_promql_parses(path: Path) -> None:
    """Every PromQL expression in the dashboards parses."""
    promql_parser = pytest.importorskip("promql_parser")
    dash = json.loads(path.read_text())
    exprs = [(title, t["expr"]) for title, t in targets(dash, "prometheus")]
    exprs += [(v["name"], v["definition"]) for v in dash["templating"]["list"]
              if v["type"] == "query" and not v["definition"].startswith("label_values(")]
    for title, expr in exprs:
        try:
            promql_parser.parse(substitute(expr))
        except Exception as exc:
            pytest.fail(f"{path.name} / {title}: {exc}\n{expr}")
    # label_values(metric{sel}, label): the selector must parse.
    for v in dash["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v.get("definition", ""))
        if m:
            promql_parser.parse(substitute(m.group(1)))


def _logql_fields(expr: str) -> set[str]:
    """Label / structured-metadata names used in stream selectors, label filters and groupings."""
    return parse_logql(substitute(expr)).fields


def _documented_names() -> tuple[str, set[str]]:
    """(all docs text, dotted names found in it turned into Loki's underscore form)."""
    text = "\n".join(p.read_text() for p in TELEMETRY_DOCS)
    dotted = set(re.findall(r"\b[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+\b", text))
    return text, {d.replace(".", "_") for d in dotted}


def _documented(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text) is not None


def loki_index_labels() -> set[str]:
    """Resource attributes stack/loki/loki.yaml makes index labels, in Loki's spelling (dots -> _)."""
    loki = yaml.safe_load((ROOT / "stack" / "loki" / "loki.yaml").read_text())
    rules = loki["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"]
    return {a.replace(".", "_") for r in rules if r.get("action") == "index_label" for a in r.get("attributes", [])}


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_logql_syntax_and_fields(path: Path) -> None:
    """LogQL queries parse, select on index labels only, and use only fields we emit."""
    dash = json.loads(path.read_text())
    index_labels = loki_index_labels()
    text, documented_sm = _documented_names()
    for title, t in targets(dash, "loki"):
        expr = t["expr"]
        try:
            q = parse_logql(substitute(expr))
        except QueryError as exc:
            pytest.fail(f"{path.name} / {title}: {exc}")
        # The stream selector may only use index labels: structured metadata goes in a filter after it.
        not_labels = {n for n, _, _ in q.selector} - index_labels
        assert not not_labels, f"{path.name} / {title}: {sorted(not_labels)} are not Loki index labels"
        # Loki rejects selectors whose matchers can all match the empty string; check with the values the
        # variables take by default (All -> allValue, textbox -> its default).
        values = {v["name"]: (v.get("allValue") if v.get("includeAll") else v.get("query")) or ""
                  for v in dash["templating"]["list"]}
        sel = parse_logql(re.sub(r"\$\{?(\w+)(?::\w+)?\}?", lambda m, values=values: str(values.get(m.group(1), "")),
                                 expr.replace("$__auto", "1m"))).selector
        assert any((op == "=" and val) or (op == "=~" and not re.fullmatch(val, "")) for _, op, val in sel), \
            f"{path.name} / {title}: every matcher of {sel!r} matches the empty string (Loki refuses it)"
        unknown = {f for f in q.fields if f not in LOKI_FIELDS}
        assert not unknown, f"{path.name} / {title}: fields we never emit {sorted(unknown)}"
        undocumented = {f for f in q.fields - LOKI_DERIVED if f not in documented_sm and not _documented(f, text)}
        assert not undocumented, f"{path.name} / {title}: {sorted(undocumented)} not in docs/telemetry.md & co."


def _emitted_genai_attributes() -> set[str]:
    """Attribute keys util-genai 1.3b0 (what our genai/ wraps) really puts on chat / tool / agent spans."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util.genai.handler import TelemetryHandler

    exp = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exp))
    h = TelemetryHandler(tracer_provider=tp)
    with h.invoke_local_agent(agent_name="agent", request_model="m", conversation_id="t1"):
        with h.inference("openai", request_model="m", conversation_id="t1") as inv:
            inv.input_tokens, inv.output_tokens, inv.cache_read_input_tokens = 10, 5, 2
            inv.finish_reasons = ["stop"]
            inv.response_model_name = "m"
        with h.tool("search"):
            pass
    keys: set[str] = set()
    for s in exp.get_finished_spans():
        keys |= set((s.attributes or {}).keys())
    return keys


def test_traceql_uses_emitted_attributes() -> None:
    """TraceQL queries use explicit scopes and only attributes we emit and document."""
    emitted = _emitted_genai_attributes() | CONTRACT_SPAN_ATTRS
    assert "gen_ai.usage.cache_read.input_tokens" in emitted  # sanity: the probe worked
    text, _ = _documented_names()
    for path, dash in load_dashboards():
        for title, t in targets(dash, "tempo"):
            try:
                q = parse_traceql(substitute(t["query"]))
            except QueryError as exc:
                pytest.fail(f"{path.name} / {title}: {exc}")
            for scope, name in q.attributes:
                # The scope decides where Tempo looks: span.service.name or resource.gen_ai.* never match anything.
                assert scope in {"span", "resource"}, f"{path.name} / {title}: use an explicit scope for {name}"
                assert (scope == "resource") == (name in RESOURCE_ATTRS), f"{path.name} / {title}: {scope}.{name}"
                assert name in emitted, f"{path.name} / {title}: {scope}.{name} is never emitted"
                assert _documented(name, text), f"{path.name} / {title}: {name} not in docs/telemetry.md & co."


def test_provisioning_escapes_grafana_macros() -> None:
    """Grafana expands $VAR in provisioning YAML, so its own macros must be written $${...} there."""
    for f in PROVISIONING.rglob("*.yaml"):
        text = f.read_text()
        bare = re.findall(r"(?<!\$)\$\{__\w+", text) + re.findall(r"(?<!\$)\$__\w+", text)
        assert not bare, f"{f.name}: unescaped Grafana macros {bare}"


def test_datasource_links() -> None:
    """The provisioned datasources link metrics to traces and traces to logs and back."""
    doc = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())
    by_uid = {d["uid"]: d for d in doc["datasources"]}
    assert set(by_uid) >= {"prometheus", "tempo", "loki", "alertmanager"}
    assert by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "tempo"
    tempo = by_uid["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert "trace_id" in tempo["tracesToLogsV2"]["query"]
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"
    derived = by_uid["loki"]["jsonData"]["derivedFields"][0]
    assert derived["datasourceUid"] == "tempo" and derived["matcherType"] == "label"
    assert derived["matcherRegex"] == "trace_id"
    dash_prov = yaml.safe_load((PROVISIONING / "dashboards" / "agentpress.yaml").read_text())
    assert dash_prov["providers"][0]["folder"] == "AgentPress"
