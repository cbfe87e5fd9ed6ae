#!/usr/bin/env python3
"""Generate the AgentPress Grafana dashboards (grafana/dashboards/*.json) from code.

Run ``python grafana/build_dashboards.py`` after editing; ``--check`` exits 1 when the JSON on disk is stale
(the unit tests run it). Plain dicts, no dependency: the JSON model is small and this keeps the generated files
reviewable.

Metric names are the OTel names of docs/telemetry.md as Prometheus stores them after the Collector's
``prometheus_remote_write`` exporter (dots -> ``_``, unit suffix such as ``_seconds``, ``_total`` on counters,
``_bucket/_sum/_count`` on histograms, units in braces dropped). ``resource_to_telemetry_conversion`` is OFF
(host, pid and instance ids would explode cardinality): the Collector's ``transform/metric_labels`` copies just
``service.name`` and ``deployment.environment.name`` (and ``host.name`` on host ``system.*`` metrics) onto the data
points, so they arrive as the labels ``service_name``, ``deployment_environment_name`` (``host_name``); the remote-write
translation adds ``job`` (service.namespace/service.name) and ``instance`` (service.instance.id). Everything else
stays in ``target_info``. Variables default to ``All`` = ``.*`` so a missing label still matches.

Fallbacks: error panels show 0 instead of "No data" when nothing failed (``zero_if_absent``, ``or_zero``). Each
Prometheus target whose ``expr`` has such a fallback also carries ``mainExpr``, the expression without it, so
tests/integration/test_dashboards_data.py can require that the real data (not the fallback) is there.
"""

# ruff: noqa: E501 - dashboard data reads better unwrapped
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}

RI = "$__rate_interval"
# TraceQL panels read Tempo, which only holds the traces tail sampling kept: every error trace, every slow trace,
# every trace with an LLM error, and OTELCOL_TAIL_SAMPLING_PERCENTAGE (10% by default) of the rest.
SAMPLED = ("From tail-sampled traces in Tempo, so biased: error and slow traces are all kept, the rest only at the "
           "sampling share (10% by default). Counts are undercounted and skewed towards failures and slow requests; "
           "percentiles are too high. Use it for shapes and breakdowns, not totals.")
# Span metrics and service-graph metrics count the spans the Collector receives: after the app's head sampling.
SAMPLED_SPANS = ("Counted from the spans apps export, so with head sampling (sample_ratio < 1) this is only the "
                 "sampled share of the calls (at 0.1, about a tenth), and empty for services with traces off. "
                 "Tail sampling does not affect it (it runs after).")
ENV_SVC = 'deployment_environment_name=~"$env", service_name=~"$service"'

# Metric names (Prometheus spelling). One place, so dashboards and docs/dashboards.md agree.
AGENT_DUR = "gen_ai_invoke_agent_duration_seconds"
TOOL_DUR = "gen_ai_execute_tool_duration_seconds"
LLM_DUR = "gen_ai_client_operation_duration_seconds"
LLM_TTFC = "gen_ai_client_operation_time_to_first_chunk_seconds"
TOKENS = "gen_ai_client_token_usage"
COST = "agentpress_llm_cost_USD_total"
UNPRICED = "agentpress_llm_unpriced_total"
ACTIVE_RUNS = "agentpress_agent_active_runs"
SCORE = "agentpress_evaluation_score"  # ours: semconv defines no evaluation metric
# HTTP RED from the SDK's own histograms (FastAPI server, httpx client): recorded for every request whatever the
# head-sampling ratio and whether traces are on at all, so these are the exact counts.
HTTP_SRV = "http_server_request_duration_seconds"
HTTP_CLI = "http_client_request_duration_seconds"
LOOP_LAG = "agentpress_asyncio_loop_lag_seconds"
PROC_MEM = "process_memory_usage_bytes"
PROC_CPU = "process_cpu_utilization_ratio"
Q_ENQ = "agentpress_queue_messages_enqueued_total"
Q_DONE = "agentpress_queue_messages_processed_total"
Q_WAIT = "agentpress_queue_wait_duration_seconds"
DROPPED = "agentpress_otel_exporter_dropped_total"
INTERNAL_ERR = "agentpress_otel_internal_errors_total"
LOOP_LAG_MAX = "agentpress_asyncio_loop_lag_max_seconds"
PROC_FDS = "process_unix_file_descriptor_count"
PROC_THREADS = "process_thread_count"
GC_COLLECTIONS = "cpython_gc_collections_total"
Q_FAILED = "agentpress_queue_messages_failed_total"
Q_RETRIED = "agentpress_queue_messages_retried_total"
SG_REQ = "traces_service_graph_request_total"
SG_FAILED = "traces_service_graph_request_failed_total"
# Host metrics (Collector host_metrics receiver, `docker compose --profile hostmetrics`); host_name is copied onto
# the data points by the gateway Collector.
HOST_CPU = "system_cpu_time_seconds_total"
HOST_LOAD = "system_cpu_load_average_1m"
HOST_MEM = "system_memory_usage_bytes"
HOST_FS = "system_filesystem_usage_bytes"
HOST_DISK = "system_disk_io_bytes_total"
HOST_NET = "system_network_io_bytes_total"


# ----------------------------------------------------------------------------------------------- helpers


# A fallback is written inline between these markers (\x01 main \x02 fallback \x03) so that it survives any
# f-string composition; prom() renders the target's ``expr`` (main OR fallback) and ``mainExpr`` (main only).
_FB_OPEN, _FB_SEP, _FB_CLOSE = "\x01", "\x02", "\x03"
_FB = re.compile("\x01([^\x01\x02\x03]*)\x02([^\x01\x02\x03]*)\x03")


def zero_if_absent(expr: str, base: str) -> str:
    """``expr`` or, for every series of ``base``, 0: error panels show 0 instead of "No data" when nothing failed."""
    return f"{_FB_OPEN}{expr}{_FB_SEP}({base}) * 0{_FB_CLOSE}"


def or_zero(expr: str) -> str:
    """``expr`` or a single 0: for series that only exist once something went wrong (Collector failures)."""
    return f"{_FB_OPEN}{expr}{_FB_SEP}vector(0){_FB_CLOSE}"


def render_fallbacks(expr: str) -> tuple[str, str]:
    """(expression as Grafana runs it, main expression without the fallbacks)."""
    full = _FB.sub(lambda m: f"({m.group(1)}) or {m.group(2)}", expr)
    main = _FB.sub(lambda m: f"({m.group(1)})", expr)
    assert not any(c in full for c in (_FB_OPEN, _FB_SEP, _FB_CLOSE)), expr
    return full, main


def ratio(num: str, den: str) -> str:
    return f"({zero_if_absent(num, den)}) / ({den})"


def quantiles(metric: str, sel: str, by: str = "", qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[dict[str, Any]]:
    grp = f"le, {by}" if by else "le"
    legend_by = f"{{{{{by}}}}} " if by else ""
    return [
        prom(
            f"histogram_quantile({q}, sum by ({grp}) (rate({metric}_bucket{{{sel}}}[{RI}])))",
            f"{legend_by}p{int(q * 100)}",
            exemplar=True,
        )
        for q in qs
    ]


def prom(expr: str, legend: str = "__auto", *, exemplar: bool = False, instant: bool = False) -> dict[str, Any]:
    full, main = render_fallbacks(expr)
    t: dict[str, Any] = {"datasource": PROM, "expr": full, "legendFormat": legend, "range": not instant}
    if main != full:
        t["mainExpr"] = main  # not a Grafana field (ignored there): the data test queries it
    if instant:
        t["instant"] = True
    if exemplar:
        t["exemplar"] = True
    return t


def loki(expr: str, legend: str = "", *, query_type: str = "range") -> dict[str, Any]:
    return {"datasource": LOKI, "expr": expr, "legendFormat": legend, "queryType": query_type}


def traceql(query: str, *, metrics: bool = False, limit: int = 50) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": TEMPO, "queryType": "traceql", "query": query, "limit": limit, "tableType": "traces"}
    if metrics:
        # A TraceQL metrics query (| rate(), | count_over_time() ...) drawn as a time series.
        t["metricsQueryType"] = "range"
        del t["tableType"]
    return t


def panel(kind: str, title: str, targets: list[dict[str, Any]], *, desc: str = "", unit: str = "short",
          w: int = 12, h: int = 8, ds: dict[str, str] = PROM, **extra: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": ds,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "_w": w,
        "_h": h,
    }
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                  "showPoints": "never", "spanNulls": True}
        p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    elif kind == "logs":
        p["options"] = {"showTime": True, "wrapLogMessage": True, "enableLogDetails": True, "sortOrder": "Descending",
                        "dedupStrategy": "none", "prettifyLogMessage": False}
    elif kind == "table":
        p["options"] = {"showHeader": True, "cellHeight": "sm"}
    p.update(extra)
    return p


def ts(title: str, targets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return panel("timeseries", title, targets, **kw)


def stat(title: str, expr: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("w", 6)
    kw.setdefault("h", 4)
    return panel("stat", title, [prom(expr, "", instant=False)], **kw)


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_w": 24, "_h": 1}


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": PROM,
        "definition": query,
        "query": {"query": query, "refId": f"PrometheusVariableQueryEditor-{name}", "qryType": 1},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }


def textbox(name: str, label: str, default: str = "", desc: str = "") -> dict[str, Any]:
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": desc,
        "query": default,
        "current": {"selected": False, "text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
        "hide": 0,
    }


# Every series a service sends carries service_name (the Collector's transform/metric_labels), whatever signal is on:
# SDK metrics with traces off, span metrics with metrics off. doctor's probe telemetry never gets here (the
# Collector's filter/doctor drops it), so it does not show up either.
ANY_SERVICE = 'service_name!=""'


def env_var(metric: str = "") -> dict[str, Any]:
    """$env from ``metric``, or (default) from any series of any service."""
    sel = metric or f"{{{ANY_SERVICE}}}"
    return query_var("env", "Environment", f"label_values({sel}, deployment_environment_name)")


def service_var(metric: str = "") -> dict[str, Any]:
    """$service from ``metric``, or (default) every service that sends any signal to Prometheus."""
    sel = f"{metric}{{deployment_environment_name=~\"$env\"}}" if metric else \
        f'{{{ANY_SERVICE}, deployment_environment_name=~"$env"}}'
    return query_var("service", "Service", f"label_values({sel}, service_name)")


def dashboard(uid: str, title: str, desc: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]],
              *, links_to: list[str] | None = None, time_from: str = "now-6h") -> dict[str, Any]:
    """Lay panels out left to right, top to bottom (24-column grid) and give them stable ids."""
    x = y = row_h = 0
    pid = 1
    laid: list[dict[str, Any]] = []
    for p in panels:
        w, h = p.pop("_w"), p.pop("_h")
        if x + w > 24 or p["type"] == "row":
            x, y, row_h = 0, y + row_h, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        p["id"] = pid
        pid += 1
        x += w
        row_h = max(row_h, h)
        if p["type"] == "row":
            x, y, row_h = 0, y + h, 0
        laid.append(p)
    links = [{"type": "dashboards", "tags": ["agentpress"], "asDropdown": True, "title": "AgentPress",
              "includeVars": True, "keepTime": True}]
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["agentpress", *(links_to or [])],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": links,
        "panels": laid,
    }


# ---------------------------------------------------------------------------------------------- dashboards


def agent_overview() -> dict[str, Any]:
    sel = f'{ENV_SVC}, gen_ai_agent_name=~"$agent"'
    tsel = f'{ENV_SVC}, gen_ai_agent_name=~"$agent"'
    runs = f"sum(rate({AGENT_DUR}_count{{{sel}}}[{RI}]))"
    errs = f'sum(rate({AGENT_DUR}_count{{{sel}, error_type!=""}}[{RI}]))'
    by_agent = f"sum by (gen_ai_agent_name) (rate({AGENT_DUR}_count{{{sel}}}[{RI}]))"
    by_agent_err = f'sum by (gen_ai_agent_name) (rate({AGENT_DUR}_count{{{sel}, error_type!=""}}[{RI}]))'
    tools = f"sum by (gen_ai_tool_name) (rate({TOOL_DUR}_count{{{tsel}}}[{RI}]))"
    tools_err = f'sum by (gen_ai_tool_name) (rate({TOOL_DUR}_count{{{tsel}, error_type!=""}}[{RI}]))'
    panels = [
        stat("Runs / min", f"{runs} * 60", desc="Agent runs finished per minute (invoke_agent spans).", unit="short"),
        stat("Run error rate", ratio(errs, runs), unit="percentunit",
             desc="Share of agent runs that ended with error.type set.",
             fieldConfig={"defaults": {"unit": "percentunit", "thresholds": {"mode": "absolute", "steps": [
                 {"color": "green", "value": None}, {"color": "orange", "value": 0.02}, {"color": "red", "value": 0.05}]}},
                 "overrides": []}),
        stat("Active runs", f'sum({ACTIVE_RUNS}{{{ENV_SVC}}})', desc="Agent runs in progress right now."),
        stat("Run duration p95",
             f"histogram_quantile(0.95, sum by (le) (rate({AGENT_DUR}_bucket{{{sel}}}[{RI}])))", unit="s"),
        row("Runs"),
        ts("Runs per minute by agent", [prom(f"{by_agent} * 60", "{{gen_ai_agent_name}}")], unit="short"),
        ts("Success and error rate", [
            prom(f"1 - ({ratio(errs, runs)})", "success"),
            prom(ratio(errs, runs), "error"),
        ], unit="percentunit", desc="Share of runs that succeeded vs failed (error.type present)."),
        ts("Run errors by agent and error type", [prom(
            zero_if_absent(f'sum by (gen_ai_agent_name, error_type) (rate({AGENT_DUR}_count{{{sel}, error_type!=""}}[{RI}]))',
                           by_agent), "{{gen_ai_agent_name}} {{error_type}}")], unit="ops"),
        ts("Run duration p50 / p95 / p99", quantiles(AGENT_DUR, sel), unit="s",
           desc="Exemplars (dots) link to the trace of a run in Tempo."),
        ts("Active runs", [prom(f'sum by (service_name) ({ACTIVE_RUNS}{{{ENV_SVC}}})', "{{service_name}}")]),
        ts("Run error rate by agent", [prom(ratio(by_agent_err, by_agent), "{{gen_ai_agent_name}}")], unit="percentunit"),
        row("Tools"),
        ts("Tool calls per minute by tool", [prom(f"{tools} * 60", "{{gen_ai_tool_name}}")]),
        ts("Tool error rate by tool", [prom(ratio(tools_err, tools), "{{gen_ai_tool_name}}")], unit="percentunit"),
        ts("Tool duration p95 by tool", quantiles(TOOL_DUR, tsel, by="gen_ai_tool_name", qs=(0.95,)), unit="s", w=24),
    ]
    variables = [env_var(f"{AGENT_DUR}_count"), service_var(f"{AGENT_DUR}_count"),
                 query_var("agent", "Agent", f'label_values({AGENT_DUR}_count{{{ENV_SVC}}}, gen_ai_agent_name)')]
    return dashboard("agentpress-agent-overview", "AgentPress / Agent overview",
                     "Is the agent healthy? Runs, errors, durations, tools, active runs.", panels, variables)


def llm_usage() -> dict[str, Any]:
    sel = f'{ENV_SVC}, gen_ai_provider_name=~"$provider", gen_ai_request_model=~"$model"'
    calls = f"sum by (gen_ai_provider_name, gen_ai_request_model) (rate({LLM_DUR}_count{{{sel}}}[{RI}]))"
    calls_tot = f"sum(rate({LLM_DUR}_count{{{sel}}}[{RI}]))"
    errs_tot = f'sum(rate({LLM_DUR}_count{{{sel}, error_type!=""}}[{RI}]))'
    err_by_type = f'sum by (error_type) (rate({LLM_DUR}_count{{{sel}, error_type!=""}}[{RI}]))'
    cost_by = f"sum by (gen_ai_provider_name, gen_ai_request_model) (rate({COST}{{{sel}}}[{RI}]))"
    tsel_model = 'span.gen_ai.request.model =~ "${model:regex}"'
    panels = [
        stat("LLM calls", f"sum(increase({LLM_DUR}_count{{{sel}}}[$__range]))", desc="Calls in the selected range."),
        stat("Tokens", f"sum(increase({TOKENS}_sum{{{sel}}}[$__range]))", desc="Input + output tokens in the range."),
        stat("Cost (USD)", f"sum(increase({COST}{{{sel}}}[$__range]))", unit="currencyUSD",
             desc="From the agentpress-otel price table; unpriced models are not included (see 'Unpriced calls')."),
        stat("LLM error rate", ratio(errs_tot, calls_tot), unit="percentunit"),
        row("Usage"),
        ts("Calls per minute by provider / model", [prom(f"{calls} * 60", "{{gen_ai_provider_name}} {{gen_ai_request_model}}")]),
        ts("Tokens per minute by model and type", [prom(
            f"sum by (gen_ai_request_model, gen_ai_token_type) (rate({TOKENS}_sum{{{sel}}}[{RI}])) * 60",
            "{{gen_ai_request_model}} {{gen_ai_token_type}}")]),
        ts("Cost per hour by provider / model", [prom(f"{cost_by} * 3600", "{{gen_ai_provider_name}} {{gen_ai_request_model}}")],
           unit="currencyUSD"),
        ts("Cached input tokens by model (from spans)", [traceql(
            f'{{span.gen_ai.operation.name = "chat" && {tsel_model}}} '
            "| sum_over_time(span.gen_ai.usage.cache_read.input_tokens) by (span.gen_ai.request.model)",
            metrics=True)], ds=TEMPO,
           desc="TraceQL metrics over chat spans: prompt tokens served from the provider's cache (no metric carries "
                "them yet). " + SAMPLED),
        row("Latency"),
        ts("Call duration p50 / p95 / p99", quantiles(LLM_DUR, sel), unit="s"),
        ts("Time to first chunk p50 / p95 by model",
           quantiles(LLM_TTFC, sel, by="gen_ai_request_model", qs=(0.5, 0.95)), unit="s",
           desc="Streaming calls only: delay until the first chunk arrived."),
        row("Errors and quality"),
        ts("Error rate by error.type", [prom(
            f"({zero_if_absent(err_by_type, calls_tot)}) / ignoring(error_type) group_left {calls_tot}",
            "{{error_type}}")], unit="percentunit"),
        ts("Finish reasons (from spans)", [traceql(
            f'{{span.gen_ai.operation.name = "chat" && {tsel_model}}} '
            "| count_over_time() by (span.gen_ai.response.finish_reasons)", metrics=True)], ds=TEMPO,
           desc="TraceQL metrics over chat spans (no metric carries finish reasons). " + SAMPLED),
        ts("Unpriced calls by model", [prom(zero_if_absent(
            f"sum by (gen_ai_request_model) (rate({UNPRICED}{{{sel}}}[{RI}]))",
            f"sum by (gen_ai_request_model) (rate({LLM_DUR}_count{{{sel}}}[{RI}]))"), "{{gen_ai_request_model}}")],
           unit="ops", desc="Calls to models missing from the price table: their cost is not counted."),
        ts("Quality score (mean) by evaluation and model", [prom(
            f"sum by (gen_ai_evaluation_name, gen_ai_request_model) (rate({SCORE}_sum{{{sel}}}[{RI}]))"
            f" / sum by (gen_ai_evaluation_name, gen_ai_request_model) (rate({SCORE}_count{{{sel}}}[{RI}]))",
            "{{gen_ai_evaluation_name}} {{gen_ai_request_model}}")]),
    ]
    variables = [
        env_var(f"{LLM_DUR}_count"), service_var(f"{LLM_DUR}_count"),
        query_var("provider", "Provider", f'label_values({LLM_DUR}_count{{{ENV_SVC}}}, gen_ai_provider_name)'),
        query_var("model", "Model",
                  f'label_values({LLM_DUR}_count{{{ENV_SVC}, gen_ai_provider_name=~"$provider"}}, gen_ai_request_model)'),
    ]
    return dashboard("agentpress-llm-usage", "AgentPress / LLM usage and cost",
                     "What is the LLM costing? Calls, tokens, cost, latency, TTFC, errors, finish reasons, scores.",
                     panels, variables)


def thread_explorer() -> dict[str, Any]:
    th = 'span.agentpress.thread.id = "$thread_id"'
    logs_sel = '{service_name=~"$service"}'
    panels = [
        panel("logs", "Logs of this thread", [loki(f'{logs_sel} | agentpress_thread_id = "$thread_id"')], ds=LOKI, w=24,
              h=12, desc="Structured-metadata filter; each line links to its trace (derived field trace_id)."),
        panel("table", "Traces of this thread", [traceql(f"{{{th}}}")], ds=TEMPO, w=12, h=10,
              desc="Runs and requests of the thread; open one for the span waterfall."),
        panel("table", "Errors in this thread (spans)", [traceql(f"{{{th} && status = error}}")], ds=TEMPO, w=12, h=10),
        panel("table", "LLM calls of this thread", [traceql(
            f'{{{th} && span.gen_ai.operation.name = "chat"}} | select(span.gen_ai.request.model, '
            "span.gen_ai.usage.input_tokens, span.gen_ai.usage.output_tokens, span.gen_ai.response.finish_reasons, "
            "span.agentpress.llm.cost_usd)")], ds=TEMPO, w=12, h=10),
        panel("table", "Tool calls of this thread", [traceql(
            f'{{{th} && span.gen_ai.operation.name = "execute_tool"}} | select(span.gen_ai.tool.name)')], ds=TEMPO, w=12, h=10),
        panel("logs", "Error logs of this thread", [loki(
            f'{logs_sel} | agentpress_thread_id = "$thread_id" | severity_text =~ "(?i)error|critical|fatal"')],
              ds=LOKI, w=24, h=8),
        row("Project"),
        panel("table", "Traces of this project", [traceql('{span.agentpress.project.id = "$project_id"}')], ds=TEMPO,
              w=12, h=10),
        panel("logs", "Logs of this project", [loki(f'{logs_sel} | agentpress_project_id = "$project_id"')], ds=LOKI,
              w=12, h=10),
    ]
    variables = [
        textbox("thread_id", "Thread id", desc="AgentPress thread id (= gen_ai.conversation.id)"),
        textbox("project_id", "Project id"),
        # Used only in Loki selectors, which need a matcher that cannot match the empty string: All = ".+".
        {**query_var("service", "Service", f"label_values({{{ANY_SERVICE}}}, service_name)"), "allValue": ".+"},
    ]
    # The env filter is not needed here: thread ids are unique across environments.
    return dashboard("agentpress-thread-explorer", "AgentPress / Thread explorer",
                     "What happened in this one thread? Logs, traces, LLM and tool calls of a thread or project.",
                     panels, variables, time_from="now-24h")


def service_health() -> dict[str, Any]:
    # RED from the SDK histograms, not span metrics: head sampling (sample_ratio < 1) drops spans in the app before
    # the Collector's span_metrics connector counts them, and with traces off there are no spans at all.
    srv = f'{ENV_SVC}, http_route=~"$route"'
    cli = f'{ENV_SVC}, server_address!=""'
    # A server error is a 5xx response (HTTP semconv: 4xx is the client's fault); an unhandled exception is a 500.
    srv_err = f'{srv}, http_response_status_code=~"5.."'
    # A client call failed when it has error.type: a status >= 400 or no response at all (timeout, refused).
    cli_err = f'{cli}, error_type!=""'
    req = f"sum(rate({HTTP_SRV}_count{{{srv}}}[{RI}]))"
    err = f"sum(rate({HTTP_SRV}_count{{{srv_err}}}[{RI}]))"
    rate_route = f"sum by (http_route) (rate({HTTP_SRV}_count{{{srv}}}[{RI}]))"
    err_route = f"sum by (http_route) (rate({HTTP_SRV}_count{{{srv_err}}}[{RI}]))"
    rate_host = f"sum by (server_address) (rate({HTTP_CLI}_count{{{cli}}}[{RI}]))"
    err_host = f"sum by (server_address) (rate({HTTP_CLI}_count{{{cli_err}}}[{RI}]))"
    # Edges into or out of $service in $env. The environment of each side comes from its spans (service_graph
    # dimension); the edge series' own deployment_environment_name is only the Collector's fallback.
    sg_in = 'server_deployment_environment_name=~"$env", server=~"$service"'
    sg_out = 'client_deployment_environment_name=~"$env", client=~"$service"'

    def edges(metric: str) -> str:
        # `or`: an edge both into and out of the selection is the same series on both sides and counted once.
        return (f"sum by (client, server) (rate({metric}{{{sg_in}}}[{RI}]) "
                f"or rate({metric}{{{sg_out}}}[{RI}]))")
    rt = f'{ENV_SVC}'
    host = 'deployment_environment_name=~"$env"'
    exact = ("From the app's http.server.request.duration histogram: every request is counted, whatever "
             "sample_ratio is and whether traces are on.")
    panels = [
        row("Inbound requests (SDK metrics: every request, exact at any sampling ratio)"),
        stat("Requests / s", req, unit="reqps", desc=exact),
        stat("Server errors / s (5xx)", zero_if_absent(err, req), unit="reqps", desc=exact),
        stat("Error rate", ratio(err, req), unit="percentunit", desc="Share of requests answered with a 5xx. " + exact),
        stat("Duration p95", f"histogram_quantile(0.95, sum by (le) (rate({HTTP_SRV}_bucket{{{srv}}}[{RI}])))",
             unit="s", desc=exact),
        ts("Request rate by route", [prom(rate_route, "{{http_route}}")], unit="reqps", desc=exact),
        ts("Server errors by route and status", [prom(zero_if_absent(
            f"sum by (http_route, http_response_status_code) (rate({HTTP_SRV}_count{{{srv_err}}}[{RI}]))",
            rate_route), "{{http_route}} {{http_response_status_code}}")], unit="reqps", desc=exact),
        ts("Error rate by route", [prom(ratio(err_route, rate_route), "{{http_route}}")], unit="percentunit",
           desc=exact),
        ts("Duration p50 / p95 / p99", quantiles(HTTP_SRV, srv), unit="s", desc=exact),
        ts("Duration p95 by route", quantiles(HTTP_SRV, srv, by="http_route", qs=(0.95,)), unit="s", w=24,
           desc=exact),
        row("Outbound HTTP (SDK metrics: every call)"),
        ts("Outbound request rate by host", [prom(rate_host, "{{server_address}}")], unit="reqps",
           desc="From the httpx integration's http.client.request.duration histogram (every call)."),
        ts("Outbound error rate by host", [prom(ratio(err_host, rate_host), "{{server_address}}")], unit="percentunit",
           desc="Calls with error.type: a status >= 400, or no response (timeout, connection refused)."),
        ts("Outbound duration p95 by host", quantiles(HTTP_CLI, cli, by="server_address", qs=(0.95,)), unit="s", w=24),
        row("Service graph (from exported spans: sampled, see descriptions)"),
        ts("Calls between services (sampled spans)", [prom(edges(SG_REQ), "{{client}} → {{server}}")], unit="reqps",
           desc="Edges of the Tempo service map: client service → server service (\"user\" = a request from outside; "
                "a virtual node such as an LLM API host when the callee sends no spans). " + SAMPLED_SPANS),
        ts("Failed calls between services (sampled spans)", [prom(zero_if_absent(edges(SG_FAILED), edges(SG_REQ)),
                                                                  "{{client}} → {{server}}")],
           unit="reqps", desc=SAMPLED_SPANS),
        row("Runtime"),
        ts("Event-loop lag p99", quantiles(LOOP_LAG, rt, by="service_name", qs=(0.99,)), unit="s",
           desc="Delay between when a probe callback was due and when it ran. A loop that stays blocked stops "
                "running the probe, so this histogram goes flat: see the max lag next to it."),
        ts("Event-loop max lag (stall in progress)", [prom(
            f"max by (service_name, loop) ({LOOP_LAG_MAX}{{{rt}}})", "{{service_name}} {{loop}}")], unit="s",
           desc="Worst lag in the last window, including how overdue the pending probe is: keeps rising while a loop "
                "is stuck (alert EventLoopBlocked)."),
        ts("Process memory (RSS) by instance", [prom(f"sum by (service_name, instance) ({PROC_MEM}{{{rt}}})",
                                                     "{{service_name}} {{instance}}")], unit="bytes",
           desc="instance = service.instance.id (one line per process)."),
        ts("Process CPU", [prom(f"sum by (service_name) ({PROC_CPU}{{{rt}}})", "{{service_name}}")], unit="percentunit"),
        ts("Open file descriptors", [prom(f"max by (service_name, instance) ({PROC_FDS}{{{rt}}})",
                                          "{{service_name}} {{instance}}")], unit="short",
           desc="A steady climb is a leak (unclosed sockets, files, HTTP clients)."),
        ts("Threads", [prom(f"max by (service_name, instance) ({PROC_THREADS}{{{rt}}})",
                            "{{service_name}} {{instance}}")], unit="short"),
        ts("Garbage collections per minute by generation", [prom(
            f"sum by (service_name, cpython_gc_generation) (rate({GC_COLLECTIONS}{{{rt}}}[{RI}])) * 60",
            "{{service_name}} gen {{cpython_gc_generation}}")], unit="short", w=24),
        row("Worker queues (Dramatiq)"),
        ts("Queue backlog by queue", [prom(
            f'sum by (queue) ({Q_ENQ}{{deployment_environment_name=~"$env"}})'
            f' - sum by (queue) ({Q_DONE}{{deployment_environment_name=~"$env"}})', "{{queue}}")], unit="short",
           desc="Enqueued by producers minus finished by workers (all services of the environment)."),
        ts("Messages processed per minute by queue and status", [prom(
            f"sum by (queue, status) (rate({Q_DONE}{{{rt}}}[{RI}])) * 60", "{{queue}} {{status}}")]),
        ts("Queue wait p95 by queue", quantiles(Q_WAIT, rt, by="queue", qs=(0.95,)), unit="s",
           desc="Time from enqueue (or ETA) until a worker starts the message."),
        ts("Failed messages per minute by actor and error type", [prom(zero_if_absent(
            f"sum by (actor, error_type) (rate({Q_FAILED}{{{rt}}}[{RI}])) * 60",
            f"sum by (actor) (rate({Q_DONE}{{{rt}}}[{RI}])) * 60"), "{{actor}} {{error_type}}")], unit="short",
           desc="Messages whose actor raised (each attempt, retried or not)."),
        ts("Retried messages per minute by actor", [prom(zero_if_absent(
            f"sum by (actor) (rate({Q_RETRIED}{{{rt}}}[{RI}])) * 60",
            f"sum by (actor) (rate({Q_DONE}{{{rt}}}[{RI}])) * 60"), "{{actor}}")], unit="short"),
        row("Host (docker compose --profile hostmetrics)"),
        ts("Host CPU busy", [prom(
            f'1 - sum by (host_name) (rate({HOST_CPU}{{{host}, state="idle"}}[{RI}]))'
            f" / sum by (host_name) (rate({HOST_CPU}{{{host}}}[{RI}]))", "{{host_name}}")], unit="percentunit",
           desc="Share of CPU time not idle, all cores. Needs the host-metrics agent (compose profile hostmetrics)."),
        ts("Host load average (1 min)", [prom(f"max by (host_name) ({HOST_LOAD}{{{host}}})", "{{host_name}}")]),
        ts("Host memory by state", [prom(f"sum by (host_name, state) ({HOST_MEM}{{{host}}})",
                                         "{{host_name}} {{state}}")], unit="bytes"),
        ts("Filesystem used", [prom(
            f'sum by (host_name, mountpoint) ({HOST_FS}{{{host}, state="used"}})'
            f" / sum by (host_name, mountpoint) ({HOST_FS}{{{host}}})", "{{host_name}} {{mountpoint}}")],
           unit="percentunit"),
        ts("Disk I/O", [prom(f"sum by (host_name, direction) (rate({HOST_DISK}{{{host}}}[{RI}]))",
                             "{{host_name}} {{direction}}")], unit="Bps"),
        ts("Network I/O", [prom(f"sum by (host_name, direction) (rate({HOST_NET}{{{host}}}[{RI}]))",
                                "{{host_name}} {{direction}}")], unit="Bps"),
    ]
    variables = [env_var(), service_var(),
                 query_var("route", "Route", f"label_values({HTTP_SRV}_count{{{ENV_SVC}}}, http_route)")]
    return dashboard("agentpress-service-health", "AgentPress / Service health (RED)",
                     "Rate, errors and duration by route from the app's HTTP metrics (exact at any sampling ratio); "
                     "outbound HTTP; service graph; runtime.",
                     panels, variables)


def frontend() -> dict[str, Any]:
    # Browser spans skip the span_metrics connector (untrusted names would explode label cardinality) and browser/
    # emits no metrics, so: exact counts from Loki (errors, `browser.page_view` events; logs are not sampled) and
    # TraceQL metrics over the tail-sampled traces in Tempo for fetches and page-load timing (biased, see SAMPLED).
    # The Collector stamps resource attribute agentpress.telemetry.source="browser" on everything from its browser
    # receiver.
    src = 'resource.agentpress.telemetry.source = "browser" && resource.service.name =~ "$frontend"'
    fetch = f"{{{src} && kind = client}}"
    load = f'{{{src} && name = "documentLoad"}}'
    browser_logs = '{service_name=~"$frontend"} | agentpress_telemetry_source = "browser"'
    logs = f'{browser_logs} | exception_type != ""'
    views = f'{browser_logs} | browser_page_view_type != ""'
    panels = [
        ts("Browser errors by type", [loki(f"sum by (exception_type) (count_over_time({logs} [$__auto]))",
                                           "{{exception_type}}")], ds=LOKI,
           desc="Global errors and unhandled rejections reported by browser/ as OTLP log records (logs are not sampled)."),
        ts("Page loads and route changes", [loki(
            f"sum by (browser_page_view_type) (count_over_time({views} [$__auto]))", "{{browser_page_view_type}}")],
           ds=LOKI,
           desc="browser/ emits one `browser.page_view` log event per page load (type load) and per history route "
                "change (type route_change). Logs are not sampled: these are exact counts."),
        ts("Fetch rate by status", [traceql(f"{fetch} | rate() by (status)", metrics=True)], ds=TEMPO,
           desc="Browser fetch/XHR client spans (they skip span metrics: page-supplied names are untrusted). "
                + SAMPLED),
        ts("Fetch failures by error type", [traceql(
            f"{{{src} && kind = client && status = error}} | rate() by (span.error.type)",
            metrics=True)], ds=TEMPO,
           desc="error.type is the HTTP status code (>= 400) or, for a fetch that got no answer (status 0), "
                "network_error (network or CORS), aborted or timeout. Failed fetches are error traces, which tail "
                "sampling always keeps: close to exact, unless a trace was dropped for another reason."),
        ts("Fetch duration p50 / p95 / p99", [traceql(f"{fetch} | quantile_over_time(duration, 0.5, 0.95, 0.99)",
                                                      metrics=True)], ds=TEMPO, unit="s", desc=SAMPLED),
        ts("Page load duration p95", [traceql(f"{load} | quantile_over_time(duration, 0.95)", metrics=True)],
           ds=TEMPO, unit="s", desc="documentLoad spans (Navigation Timing). " + SAMPLED),
        panel("logs", "Browser errors", [loki(logs)], ds=LOKI, w=24, h=10,
              desc="Each line links to its trace; the backend spans of the same fetch are in that trace."),
    ]
    variables = [textbox("frontend", "Frontend service (regex)", ".+",
                         desc="service.name of the browser app (initAgentpressOtel serviceName)")]
    return dashboard("agentpress-frontend", "AgentPress / Frontend",
                     "Browser errors, page loads, fetch latency and failures from browser/ telemetry.", panels, variables)


def pipeline() -> dict[str, Any]:
    # Collector self-metrics: 0.159 exposes counters without the _total suffix, older/other readers with it.
    def name(metric_tpl: str, s: str) -> str:
        return f'{{__name__=~"{metric_tpl.format(s=s)}(_total)?"}}'

    def sig(metric_tpl: str, by: str) -> list[dict[str, Any]]:
        return [prom(f"sum by ({by}) (rate({name(metric_tpl, s)}[{RI}]))", f"{{{{{by}}}}} {s}")
                for s in ("spans", "log_records", "metric_points")]

    def failed(metric_tpl: str, by: str) -> list[dict[str, Any]]:
        return [prom(or_zero(f"sum by ({by}) (rate({name(metric_tpl, s)}[{RI}]))"), f"{{{{{by}}}}} {s}")
                for s in ("spans", "log_records", "metric_points")]

    panels = [
        ts("Accepted by receiver", sig("otelcol_receiver_accepted_{s}", "receiver"), unit="short"),
        ts("Refused by receiver", failed("otelcol_receiver_refused_{s}", "receiver"), unit="short",
           desc="Refused items were rejected (memory_limiter, invalid data); the client may retry."),
        ts("Sent by exporter", sig("otelcol_exporter_sent_{s}", "exporter"), unit="short"),
        ts("Export failures", failed("otelcol_exporter_send_failed_{s}", "exporter")
           + failed("otelcol_exporter_enqueue_failed_{s}", "exporter"), unit="short",
           desc="send_failed = backend errors after retries; enqueue_failed = queue full, data dropped."),
        ts("Exporter queue fill", [prom(
            "max by (exporter) (otelcol_exporter_queue_size) / max by (exporter) (otelcol_exporter_queue_capacity)",
            "{{exporter}}")], unit="percentunit"),
        ts("Remote-write failures (Prometheus exporter)", [prom(or_zero(
            f'sum(rate({{__name__=~"otelcol_exporter_prometheusremotewrite_failed_translations(_total)?"}}[{RI}]))'),
            "translation failures")], unit="short"),
        row("Application side (agentpress-otel)"),
        ts("Dropped by the app before export", [prom(or_zero(
            f"sum by (service_name, signal, reason) (rate({DROPPED}{{{ENV_SVC}}}[{RI}]))"),
            "{{service_name}} {{signal}} {{reason}}")], unit="short",
           desc="Items agentpress-otel dropped: full queues, failed exports, Slack overload."),
        ts("Errors swallowed inside agentpress-otel", [prom(or_zero(
            f"sum by (service_name, component) (rate({INTERNAL_ERR}{{{ENV_SVC}}}[{RI}]))"),
            "{{service_name}} {{component}}")], unit="short"),
        ts("Instances reporting metrics, by service", [prom(
            'count by (job) (target_info{deployment_environment_name=~"$env"})', "{{job}}")], unit="short",
           desc="target_info is pushed with every metric export (job = service.name); a drop means a service went quiet.",
           w=24),
    ]
    variables = [env_var(), service_var()]
    return dashboard("agentpress-telemetry-pipeline", "AgentPress / Telemetry pipeline",
                     "Is observability itself healthy? Collector accepted/refused/dropped items, queues, app drops.",
                     panels, variables)


DASHBOARDS = {
    "agent-overview.json": agent_overview,
    "llm-usage-and-cost.json": llm_usage,
    "thread-explorer.json": thread_explorer,
    "service-health.json": service_health,
    "frontend.json": frontend,
    "telemetry-pipeline.json": pipeline,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, sort_keys=False) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ from the generated ones")
    args = ap.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT_DIR / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale dashboards (run python grafana/build_dashboards.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
