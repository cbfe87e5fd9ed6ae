#!/usr/bin/env python3
"""Generate the AgentPress Grafana dashboards (grafana/dashboards/*.json) from code.

Run ``python grafana/build_dashboards.py`` after editing; ``--check`` exits 1 when the JSON on disk is stale
(the unit tests run it). Plain dicts, no dependency: the JSON model is small and this keeps the generated files
reviewable.

Metric names are the OTel names of docs/telemetry.md as Prometheus stores them after the Collector's
``prometheus_remote_write`` exporter (dots -> ``_``, unit suffix such as ``_seconds``, ``_total`` on counters,
``_bucket/_sum/_count`` on histograms, units in braces dropped). Resource attributes arrive as labels
(``service_name``, ``deployment_environment_name``) because the Collector enables
``resource_to_telemetry_conversion``; variables default to ``All`` = ``.*`` so a missing label still matches.
"""

# ruff: noqa: E501 - dashboard data reads better unwrapped
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}

RI = "$__rate_interval"
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
SCORE = "gen_ai_evaluation_score"
SPAN_CALLS = "traces_span_metrics_calls_total"
SPAN_DUR = "traces_span_metrics_duration_seconds"
LOOP_LAG = "agentpress_asyncio_loop_lag_seconds"
PROC_MEM = "process_memory_usage_bytes"
PROC_CPU = "process_cpu_utilization_ratio"
Q_ENQ = "agentpress_queue_messages_enqueued_total"
Q_DONE = "agentpress_queue_messages_processed_total"
Q_WAIT = "agentpress_queue_wait_duration_seconds"
DROPPED = "agentpress_otel_exporter_dropped_total"
INTERNAL_ERR = "agentpress_otel_internal_errors_total"


# ----------------------------------------------------------------------------------------------- helpers


def zero_if_absent(expr: str, base: str) -> str:
    """``expr`` or, for every series of ``base``, 0: error panels show 0 instead of "No data" when nothing failed."""
    return f"({expr}) or ({base}) * 0"


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
    t: dict[str, Any] = {"datasource": PROM, "expr": expr, "legendFormat": legend, "range": not instant}
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


def env_var(metric: str) -> dict[str, Any]:
    return query_var("env", "Environment", f"label_values({metric}, deployment_environment_name)")


def service_var(metric: str) -> dict[str, Any]:
    return query_var("service", "Service", f'label_values({metric}{{deployment_environment_name=~"$env"}}, service_name)')


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
            metrics=True)], ds=TEMPO, desc="TraceQL metrics over chat spans: prompt tokens served from the provider's cache."),
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
            "| count_over_time() by (span.gen_ai.response.finish_reasons)", metrics=True)], ds=TEMPO),
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
        {**query_var("service", "Service", f"label_values({SPAN_CALLS}, service_name)"), "allValue": ".+"},
    ]
    # The env filter is not needed here: thread ids are unique across environments.
    return dashboard("agentpress-thread-explorer", "AgentPress / Thread explorer",
                     "What happened in this one thread? Logs, traces, LLM and tool calls of a thread or project.",
                     panels, variables, time_from="now-24h")


def service_health() -> dict[str, Any]:
    srv = f'{ENV_SVC}, span_kind="SPAN_KIND_SERVER", http_route=~"$route"'
    cli = f'{ENV_SVC}, span_kind="SPAN_KIND_CLIENT", server_address!=""'
    rate_route = f"sum by (http_route) (rate({SPAN_CALLS}{{{srv}}}[{RI}]))"
    err_route = f'sum by (http_route) (rate({SPAN_CALLS}{{{srv}, status_code="STATUS_CODE_ERROR"}}[{RI}]))'
    rate_host = f"sum by (server_address) (rate({SPAN_CALLS}{{{cli}}}[{RI}]))"
    err_host = f'sum by (server_address) (rate({SPAN_CALLS}{{{cli}, status_code="STATUS_CODE_ERROR"}}[{RI}]))'
    rt = f'{ENV_SVC}'
    panels = [
        row("Inbound requests (span metrics, before sampling)"),
        ts("Request rate by route", [prom(rate_route, "{{http_route}}")], unit="reqps"),
        ts("Error rate by route", [prom(ratio(err_route, rate_route), "{{http_route}}")], unit="percentunit"),
        ts("Duration p50 / p95 / p99", quantiles(SPAN_DUR, srv), unit="s"),
        ts("Duration p95 by route", quantiles(SPAN_DUR, srv, by="http_route", qs=(0.95,)), unit="s"),
        row("Outbound HTTP (client spans)"),
        ts("Outbound request rate by host", [prom(rate_host, "{{server_address}}")], unit="reqps"),
        ts("Outbound error rate by host", [prom(ratio(err_host, rate_host), "{{server_address}}")], unit="percentunit"),
        ts("Outbound duration p95 by host", quantiles(SPAN_DUR, cli, by="server_address", qs=(0.95,)), unit="s", w=24),
        row("Runtime"),
        ts("Event-loop lag p99", quantiles(LOOP_LAG, rt, by="service_name", qs=(0.99,)), unit="s",
           desc="Delay between when a probe callback was due and when it ran; a blocked loop shows here first."),
        ts("Process memory", [prom(f"sum by (service_name, service_instance_id) ({PROC_MEM}{{{rt}}})",
                                   "{{service_name}} {{service_instance_id}}")], unit="bytes"),
        ts("Process CPU", [prom(f"sum by (service_name) ({PROC_CPU}{{{rt}}})", "{{service_name}}")], unit="percentunit"),
        row("Worker queues (Dramatiq)"),
        ts("Queue backlog by queue", [prom(
            f'sum by (queue) ({Q_ENQ}{{deployment_environment_name=~"$env"}})'
            f' - sum by (queue) ({Q_DONE}{{deployment_environment_name=~"$env"}})', "{{queue}}")], unit="short",
           desc="Enqueued by producers minus finished by workers (all services of the environment)."),
        ts("Messages processed per minute by queue and status", [prom(
            f"sum by (queue, status) (rate({Q_DONE}{{{rt}}}[{RI}])) * 60", "{{queue}} {{status}}")]),
        ts("Queue wait p95 by queue", quantiles(Q_WAIT, rt, by="queue", qs=(0.95,)), unit="s", w=24,
           desc="Time from enqueue (or ETA) until a worker starts the message."),
    ]
    variables = [env_var(SPAN_CALLS), service_var(SPAN_CALLS),
                 query_var("route", "Route", f'label_values({SPAN_CALLS}{{{ENV_SVC}, span_kind="SPAN_KIND_SERVER"}}, http_route)')]
    return dashboard("agentpress-service-health", "AgentPress / Service health (RED)",
                     "Rate, errors and duration by route from the Collector's span metrics; outbound HTTP; runtime.",
                     panels, variables)


def frontend() -> dict[str, Any]:
    # Browser spans skip the span_metrics connector (untrusted names would explode label cardinality), so the
    # frontend views use TraceQL metrics over the sampled traces in Tempo and the error logs in Loki. The Collector
    # stamps resource attribute agentpress.telemetry.source="browser" on everything from its browser receiver.
    src = 'resource.agentpress.telemetry.source = "browser" && resource.service.name =~ "$frontend"'
    fetch = f"{{{src} && kind = client}}"
    page = f'{{{src} && name =~ "documentLoad|page_load|route_change|routeChange"}}'
    logs = '{service_name=~"$frontend"} | agentpress_telemetry_source = "browser" | exception_type != ""'
    panels = [
        ts("Browser errors by type", [loki(f"sum by (exception_type) (count_over_time({logs} [$__auto]))",
                                           "{{exception_type}}")], ds=LOKI,
           desc="Global errors and unhandled rejections reported by browser/ as OTLP log records."),
        ts("Page loads and route changes", [traceql(f"{page} | count_over_time() by (name)", metrics=True)], ds=TEMPO,
           desc="From sampled traces: multiply by the sampling share for absolute numbers."),
        ts("Fetch rate by status", [traceql(f"{fetch} | rate() by (status)", metrics=True)], ds=TEMPO),
        ts("Fetch failures by status code", [traceql(
            f"{{{src} && kind = client && status = error}} | rate() by (span.http.response.status_code)",
            metrics=True)], ds=TEMPO),
        ts("Fetch duration p50 / p95 / p99", [traceql(f"{fetch} | quantile_over_time(duration, .5, .95, .99)",
                                                      metrics=True)], ds=TEMPO, unit="s"),
        ts("Page load duration p95", [traceql(f"{page} | quantile_over_time(duration, .95) by (name)", metrics=True)],
           ds=TEMPO, unit="s"),
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
        return [prom(f"sum by ({by}) (rate({name(metric_tpl, s)}[{RI}])) or vector(0)", f"{{{{{by}}}}} {s}")
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
        ts("Remote-write failures (Prometheus exporter)", [prom(
            f'sum(rate({{__name__=~"otelcol_exporter_prometheusremotewrite_failed_translations(_total)?"}}[{RI}])) or vector(0)',
            "translation failures")], unit="short"),
        row("Application side (agentpress-otel)"),
        ts("Dropped by the app before export", [prom(
            f"sum by (service_name, signal, reason) (rate({DROPPED}{{{ENV_SVC}}}[{RI}])) or vector(0)",
            "{{service_name}} {{signal}} {{reason}}")], unit="short",
           desc="Items agentpress-otel dropped: full queues, failed exports, Slack overload."),
        ts("Errors swallowed inside agentpress-otel", [prom(
            f"sum by (service_name, component) (rate({INTERNAL_ERR}{{{ENV_SVC}}}[{RI}])) or vector(0)",
            "{{service_name}} {{component}}")], unit="short"),
        ts("Instances reporting metrics, by service", [prom(
            'count by (job) (target_info{deployment_environment_name=~"$env"})', "{{job}}")], unit="short",
           desc="target_info is pushed with every metric export (job = service.name); a drop means a service went quiet.",
           w=24),
    ]
    variables = [env_var(SPAN_CALLS), service_var(SPAN_CALLS)]
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
