"""What ``agentpress-otel demo`` shows: per-thread numbers from the exported spans, the span tree, log lines,
the Slack post, and the redaction and export checks (all computed from what was exported, never asserted).
"""

from __future__ import annotations

import io
import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from agentpress_otel import _selftel
from agentpress_otel._context import ID_ATTRIBUTES
from agentpress_otel._harness._proc import http_ok
from agentpress_otel._text import truncate
from agentpress_otel.cli.demo_plan import (
    DASHBOARDS,
    SHOWN_SCENARIOS,
    ExportOutcome,
    RedactionCheck,
    ThreadPlan,
    ThreadStats,
    _skipped_cases,
    check_redaction,
    percentile,
    thread_stats,
)
from agentpress_otel.redaction import redact

_G_METRICS = _selftel.guard("demo.metrics")
_THREAD = ID_ATTRIBUTES["thread_id"]
_REQUEST = ID_ATTRIBUTES["request_id"]

def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def _hex(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def _short_error(span: Any) -> str:
    a = _attrs(span)
    et = str(a.get("error.type") or "error")
    desc = span.status.description or ""
    if desc and desc != et:
        return f"{et}: {truncate(desc, 90)}"
    return et


def _first_user_message(raw: Any) -> str | None:
    try:
        msgs = json.loads(raw) if isinstance(raw, str) else raw
        for m in msgs or []:
            if m.get("role") == "user":
                parts = m.get("parts") or []
                for p in parts:
                    if p.get("content"):
                        return str(p["content"])
                if m.get("content"):
                    return str(m["content"])
    except (ValueError, TypeError, AttributeError):
        return None
    return None


def span_label(span: Any) -> Text:
    """One line per span: name, duration and what matters for its kind; errors in red with a cross."""
    from opentelemetry.trace import SpanKind, StatusCode

    a = _attrs(span)
    dur = (span.end_time - span.start_time) / 1e6 if span.end_time and span.start_time else None
    failed = span.status.status_code == StatusCode.ERROR
    t = Text()
    t.append("✗ " if failed else "✓ ", style="bold red" if failed else "green")
    op = a.get("gen_ai.operation.name")
    t.append(span.name, style="bold cyan" if op == "invoke_agent" else "bold")
    t.append(f"  {_ms(dur)}", style="yellow")
    if op == "chat":
        if "gen_ai.response.time_to_first_chunk" in a:
            t.append(f"  TTFT {_ms(float(a['gen_ai.response.time_to_first_chunk']) * 1000)}", style="magenta")
        if "gen_ai.usage.input_tokens" in a or "gen_ai.usage.output_tokens" in a:
            t.append(f"  tokens in {a.get('gen_ai.usage.input_tokens', 0)} / out "
                     f"{a.get('gen_ai.usage.output_tokens', 0)}")
        if "agentpress.llm.cost_usd" in a:
            t.append(f"  ${float(a['agentpress.llm.cost_usd']):.6f}", style="green")
        fr = a.get("gen_ai.response.finish_reasons")
        if fr:
            t.append(f"  finish={','.join(fr)}", style="dim")
    elif op == "execute_tool":
        if a.get("gen_ai.tool.call.id"):
            t.append(f"  call {a['gen_ai.tool.call.id']}", style="dim")
    elif span.kind == SpanKind.CLIENT:
        t.append("  (HTTP client: the demo's traffic driver)", style="dim")
    elif "http.response.status_code" in a:
        t.append(f"  HTTP {a['http.response.status_code']}", style="dim")
        if a.get(_REQUEST):
            t.append(f"  request_id={a[_REQUEST]}", style="dim")
    if failed:
        t.append(f"  {_short_error(span)}", style="red")
    return t


def build_tree(title: str, spans: Sequence[Any], logs: Sequence[Any]) -> Tree:
    """Span trees of every trace that touched one thread, oldest first, with score events attached."""
    by_id = {s.context.span_id: s for s in spans}
    children: dict[int, list[Any]] = defaultdict(list)
    roots = []
    for s in spans:
        pid = s.parent.span_id if s.parent is not None else None
        if pid is not None and pid in by_id:
            children[pid].append(s)
        else:
            roots.append(s)
    events: dict[int, list[Any]] = defaultdict(list)
    for lr in logs:
        rec = getattr(lr, "log_record", lr)
        if getattr(rec, "event_name", None) == "gen_ai.evaluation.result" and rec.span_id:
            events[rec.span_id].append(rec)
    tree = Tree(Text(title, style="bold"))
    prompt_shown = False

    def add(node: Tree, s: Any) -> None:
        nonlocal prompt_shown
        sub = node.add(span_label(s))
        a = _attrs(s)
        if not prompt_shown and a.get("gen_ai.operation.name") == "chat":
            um = _first_user_message(a.get("gen_ai.input.messages"))
            if um:
                prompt_shown = True
                sub.add(Text(f"prompt (as exported): {truncate(um, 140)}", style="dim italic"))
        for ev in events.get(s.context.span_id, []):
            # The semconv attributes of the gen_ai.evaluation.result event (the score *metric* is
            # agentpress.evaluation.score; the demo does not read it).
            ea = dict(ev.attributes or {})
            sub.add(Text(f"★ {ev.event_name} {ea.get('gen_ai.evaluation.name')}="
                         f"{ea.get('gen_ai.evaluation.score.value')} ({ea.get('gen_ai.evaluation.score.label')})",
                         style="bold blue"))
        for c in sorted(children.get(s.context.span_id, []), key=lambda x: x.start_time or 0):
            add(sub, c)

    for r in sorted(roots, key=lambda x: x.start_time or 0):
        add(tree, r)
    return tree


def spans_of_thread(spans: Sequence[Any], thread_id: str) -> list[Any]:
    """All spans of the traces in which ``thread_id`` appears."""
    traces = {s.context.trace_id for s in spans if _attrs(s).get(_THREAD) == thread_id}
    return [s for s in spans if s.context.trace_id in traces]


#: span/log attribute -> JSON field of the five ids
_FIELDS = {attr: name for name, attr in ID_ATTRIBUTES.items()}


def log_json(lr: Any) -> dict[str, Any]:
    """An exported OTel log record as the JSON line a log backend would show."""
    rec = getattr(lr, "log_record", lr)
    a = dict(rec.attributes or {})
    out: dict[str, Any] = {"severity": rec.severity_text or str(rec.severity_number), "event": rec.body
                           if rec.body is not None else rec.event_name}
    for k, v in a.items():
        if k in _FIELDS:
            out[_FIELDS[k]] = v
        elif k in ID_ATTRIBUTES:  # a structlog field that kept its JSON name
            out[k] = v
    for k, v in a.items():
        if k not in _FIELDS and k not in out and not k.startswith(("code.", "log.", "process.", "thread.")):
            out[k] = v
    if rec.trace_id:
        out["trace_id"] = _hex(rec.trace_id, 32)
    if rec.span_id:
        out["span_id"] = _hex(rec.span_id, 16)
    return out


def slack_text(post: Any) -> str:
    """Human-readable text of a Slack webhook payload: Block Kit blocks (fields on one line), else ``text``."""
    data = post.json
    if data is None:
        return str(post.body.decode("utf-8", "replace"))
    if not isinstance(data, dict):
        return json.dumps(data)
    lines: list[str] = []
    for block in data.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            lines.append(text["text"])
        fields = [f.get("text", "").replace("\n", " ") for f in block.get("fields") or [] if isinstance(f, dict)]
        if fields:
            lines.append("  ·  ".join(fields))
        elems = []
        for e in block.get("elements") or []:
            if not isinstance(e, dict):
                continue
            t = e.get("text")
            label = t.get("text") if isinstance(t, dict) else t
            if isinstance(label, str):
                elems.append(label)  # button URLs are long; the Grafana links are listed separately
        if elems:
            lines.append("  ·  ".join(elems))
    for att in data.get("attachments") or []:
        if isinstance(att, dict) and isinstance(att.get("text"), str):
            lines.append(att["text"])
    if not lines and isinstance(data.get("text"), str):
        lines.append(data["text"])
    return "\n".join(lines) if lines else json.dumps(data)


def grafana_links(base: str, thread_id: str | None, trace_id: str | None) -> list[tuple[str, str]]:
    base = base.rstrip("/")
    links = [("Dashboards (folder AgentPress)", f"{base}/dashboards/f/agentpress/")]
    links += [(title, f"{base}/d/{uid}") for title, uid in DASHBOARDS]
    if thread_id:
        links.append((f"Thread {thread_id}", f"{base}/d/agentpress-thread-explorer?var-thread_id={thread_id}"))
    if trace_id:
        panes = {"a": {"datasource": "tempo", "queries": [
            {"refId": "A", "datasource": {"type": "tempo", "uid": "tempo"}, "queryType": "traceql",
             "query": trace_id}], "range": {"from": "now-1h", "to": "now"}}}
        links.append((f"Trace {trace_id}",
                      f"{base}/explore?schemaVersion=1&panes={quote(json.dumps(panes, separators=(',', ':')))}"))
    return links


def _cost(v: float) -> str:
    """Compact USD amount with three significant digits and never an exponent: 0.000133, 0.0421, 12.50."""
    if v <= 0:
        return "0"
    decimals = min(8, max(2, 2 - math.floor(math.log10(v))))
    return f"{v:.{decimals}f}"


_STATUS_MARK = {"completed": ("✓", "green"), "failed": ("✗", "bold red")}
# (key, header, justify, only on wide terminals)


_TABLE_COLUMNS = (
    ("thread", "thread", "left", False), ("case", "run", "left", False), ("model", "model", "left", True),
    ("calls", "LLM", "right", False), ("in", "in", "right", False),
    ("out", "out", "right", False), ("cost", "cost $", "right", False), ("p50", "p50", "right", False),
    ("p95", "p95", "right", False), ("ttft", "TTFT p50", "right", True), ("tools", "tools", "right", True),
    ("errors", "err", "right", False),
)


WIDE_TABLE_MIN_WIDTH = 110


def thread_table(plans: Sequence[ThreadPlan], stats: dict[str, ThreadStats], width: int) -> Table:
    """One row per thread, its run marked ✓/✗. Numbers are never cut: every cell is short and no-wrap at its
    full width; below
    ``WIDE_TABLE_MIN_WIDTH`` columns the model, TTFT and tool columns go, and only the thread column may
    shrink (the full id of the shown thread is in the span tree above)."""
    wide = width >= WIDE_TABLE_MIN_WIDTH
    cols = [c for c in _TABLE_COLUMNS if wide or not c[3]]
    rows: list[dict[str, Any]] = []
    for p in plans:
        st = stats.get(p.thread_id, ThreadStats())
        mark, style = _STATUS_MARK.get(p.status, ("?", "yellow"))
        rows.append({
            "thread": p.thread_id[:8], "case": Text(mark, style=style) + Text(f" {p.scenario}"),
            "model": p.model.split("/", 1)[-1], "calls": str(st.llm_calls), "in": str(st.input_tokens),
            "out": str(st.output_tokens), "cost": _cost(st.cost_usd), "p50": _ms(percentile(st.durations_ms, 50)),
            "p95": _ms(percentile(st.durations_ms, 95)), "ttft": _ms(percentile(st.ttft_ms, 50)),
            "tools": str(st.tool_calls), "errors": Text(str(st.errors), style="bold red" if st.errors else ""),
        })
    table = Table(title="Per thread: LLM calls, tokens in/out, cost, latency (exported spans)", show_lines=False)
    for key, header, just, _ in cols:
        if key == "thread":
            table.add_column(header, justify=just, no_wrap=False, overflow="ellipsis",  # type: ignore[arg-type]
                             min_width=len(header))
            continue
        full = max([len(header), *(len(str(r[key])) for r in rows)])
        table.add_column(header, justify=just, no_wrap=True, min_width=full)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*(r[key] for key, *_ in cols))
    return table


@dataclass
class DemoResult:
    """Everything one demo run produced, for :func:`render`.

    ``times`` are ``time.monotonic()`` at start, once the server was ready, and once every thread was driven.
    """

    plans: list[ThreadPlan]
    spans: list[Any]
    logs: list[Any]
    posts: list[Any]
    llm_requests: list[Any]
    config: Any  # the telemetry handle's Config: endpoint, protocol, grafana_url
    reader: Any  # the in-memory metric reader
    export: ExportOutcome
    secret: str
    sink: io.StringIO  # the app's own JSON log lines
    times: tuple[float, float, float]
    scenarios: dict[str, Any]
    json_summary: str | None = None
    stats: dict[str, ThreadStats] = field(init=False)

    def __post_init__(self) -> None:
        self.stats = thread_stats(self.spans)

    @property
    def shown(self) -> ThreadPlan:
        """The thread shown as a span tree: the first that carries the planted secret."""
        return next((p for p in self.plans if p.scenario in SHOWN_SCENARIOS), self.plans[0])


def render(console: Console, res: DemoResult) -> int:
    """Print the span tree, table, logs, Slack post, redaction and export checks; return the exit code.

    Example::

        code = render(Console(), DemoResult(plans=plans, spans=spans, ...))
    """
    shown = res.shown
    skipped = _skipped_cases(res.plans)
    if skipped:
        console.print(f"[yellow]! not covered by this run: {', '.join(skipped)}[/]")

    # 1. the span tree of one thread
    thread_spans = spans_of_thread(res.spans, shown.thread_id)
    console.print()
    console.rule(f"[bold]Span tree of thread {shown.thread_id}[/] (scenario: {shown.scenario})")
    console.print(build_tree(f"thread {shown.thread_id} · agent_run {shown.agent_run_id}", thread_spans, res.logs))
    # 2. one row per thread
    console.print()
    console.print(thread_table(res.plans, res.stats, console.width))
    picked = _show_logs(console, res)  # 3. correlated log lines
    _show_slack(console, res)  # 4. Slack
    # 5. redaction, checked on what was exported rather than asserted
    red = check_redaction(res.secret, res.spans, res.logs, res.posts, thread_spans)
    _show_redaction(console, red, shown)
    metric_names = _metric_names(res.reader)
    t_start, t_ready, t_driven = res.times
    elapsed = time.monotonic() - t_start
    console.print(f"[dim]{len(res.spans)} spans, {len(res.logs)} log records, {len(metric_names)} metrics, "
                  f"{len(res.llm_requests)} requests served by the local LLM server · start-up (LiteLLM import) "
                  f"{t_ready - t_start:.1f} s, workload {t_driven - t_ready:.1f} s, total {elapsed:.1f} s[/]")
    export_problem = res.export.problem(res.config.endpoint)
    _show_export(console, res, export_problem)
    if res.json_summary:
        _write_summary(res, picked=picked, red=red, skipped=skipped, metric_names=metric_names, elapsed=elapsed)

    ok = bool(res.spans) and all(p.status in ("completed", "failed") for p in res.plans)
    if not ok:
        console.print("[bold red]demo did not complete: some runs timed out or no spans were recorded[/]")
    if res.export.exporting and export_problem:
        console.print()
        console.print(Text(f"✗ {export_problem}. Check the endpoint with `agentpress-otel doctor`.",
                           style="bold red"))
    return 0 if ok and red.ok and res.export.ok else 1


def _show_logs(console: Console, res: DemoResult) -> list[dict[str, Any]]:
    """The shown thread's exported log lines (at most 5, one per kind of event); returns those printed."""
    shown = res.shown
    console.print()
    console.rule("[bold]Correlated log lines[/] (JSON, as exported; ids join them to the trace)")
    records = [log_json(lr) for lr in res.logs]
    mine = [r for r in records if r.get("thread_id") == shown.thread_id and r.get("trace_id")]
    picked: list[dict[str, Any]] = []
    if mine:
        wanted = ("starting agent run", "rate limited", "tool failed", "agent run failed", "agent run completed",
                  "user feedback")
        picked = [next(r for r in mine if str(r.get("event", "")).startswith(w)) for w in wanted
                  if any(str(r.get("event", "")).startswith(w) for r in mine)] or mine[:5]
        picked = [_clip_values(r) for r in picked[:5]]
        for r in picked:
            console.print(JSON.from_data(r, indent=None))
    else:
        console.print("[yellow]no OTel log records from structlog (integration not available); "
                      "the app's own JSON lines, redacted:[/]")
        lines = [ln for ln in res.sink.getvalue().splitlines() if shown.thread_id in ln][:5]
        for ln in lines:
            console.print(Text(redact(ln)))
    return picked


def _show_slack(console: Console, res: DemoResult) -> None:
    console.print()
    posts = res.posts
    if posts:
        body = "\n\n".join(slack_text(p) for p in posts[:3])
        more = f"\n… and {len(posts) - 3} more" if len(posts) > 3 else ""
        console.print(Panel(Text(body + more), title="Slack message received by the local stand-in",
                            border_style="red"))
    elif any(p.status == "failed" for p in res.plans):
        console.print("[bold red]No Slack message arrived for the failed run(s).[/]")


def _show_redaction(console: Console, red: RedactionCheck, shown: ThreadPlan) -> None:
    if red.ok:
        console.print(f"[bold]Redaction:[/] ✓ the prompt of thread {shown.thread_id[:8]} contained an OpenAI key; "
                      "it is in none of the exported spans, log records or Slack posts, which carry only the "
                      "[REDACTED:...] tag shown above.")
    elif red.leaked_in:
        console.print(f"[bold red]✗ Redaction failed: the planted OpenAI key is in the exported "
                      f"{', '.join(red.leaked_in)}.[/]")
    else:
        console.print("[bold red]✗ Redaction check: no [REDACTED:openai_key:...] tag in the shown thread's "
                      "spans (was the prompt captured?).[/]")


def _metric_names(reader: Any) -> list[str]:
    """Names of the metrics the in-memory reader collected (informational: empty if it cannot collect)."""
    data = None
    with _G_METRICS:
        data = reader.get_metrics_data()
    return sorted({m.name for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
                   for m in sm.metrics})


def _show_export(console: Console, res: DemoResult, export_problem: str | None) -> None:
    """Where the telemetry went: the Grafana links after a good export, a hint in embedded mode.

    A failed export is reported last, by :func:`render`, without dashboard links (they would not show this run).
    """
    cfg = res.config
    if not res.export.exporting:
        console.print("[dim]Send this to a Collector: agentpress-otel demo --endpoint http://localhost:4317 "
                      "(see `agentpress-otel stack up`).[/]")
        return
    if export_problem:
        return
    console.print()
    console.print(f"[green]✓ everything was exported to {cfg.endpoint} ({cfg.protocol})[/]")
    grafana = cfg.grafana_url
    if http_ok(f"{grafana.rstrip('/')}/api/health", timeout=0.5):
        console.rule(f"[bold]Grafana[/] ({grafana}; dashboards in folder AgentPress)")
    else:
        console.rule("[bold]Grafana links[/]")
        console.print(f"[yellow]! no Grafana answers at {grafana}: these links need the compose stack's "
                      "Grafana (`docker compose up -d`, see the README; `agentpress-otel stack up` has none) "
                      "or AGENTPRESS_OTEL_GRAFANA_URL pointing at yours.[/]")
    for title, url in grafana_links(grafana, res.shown.thread_id, res.shown.trace_id):
        # soft_wrap: long URLs stay on one line so terminals can open them
        console.print(Text(f"{title}: ", style="bold") + Text(url, style=f"link {url}"), soft_wrap=True)


def _thread_summary(p: ThreadPlan, st: ThreadStats) -> dict[str, Any]:
    return {"thread_id": p.thread_id, "scenario": p.scenario, "agent_run_id": p.agent_run_id,
            "status": p.status, "error": p.error, "trace_id": p.trace_id, "feedback": p.feedback,
            **{k: v for k, v in vars(st).items() if k not in ("durations_ms", "ttft_ms")},
            "chat_durations_ms": st.durations_ms,
            "p50_ms": percentile(st.durations_ms, 50),
            "p95_ms": percentile(st.durations_ms, 95)}


def _write_summary(res: DemoResult, *, picked: list[dict[str, Any]], red: RedactionCheck, skipped: list[str],
                   metric_names: list[str], elapsed: float) -> None:
    """The ``--json-summary`` file: what the run did and what was exported, for tests and scripts."""
    sc = res.scenarios.get(res.shown.scenario)
    summary = {
        "mode": "export" if res.export.exporting else "embedded",
        "elapsed_s": round(elapsed, 3),
        "demo_secret": res.secret,
        "shown_thread": res.shown.thread_id,
        "shown_slow_delay_s": getattr(sc, "slow_s", None),
        "shown_logs": picked,
        "redaction_ok": red.ok,
        "export_ok": res.export.ok,
        "export_lost": res.export.lost,
        "skipped_cases": skipped,
        "threads": [_thread_summary(p, res.stats.get(p.thread_id, ThreadStats())) for p in res.plans],
        "llm_server": [dict(response_id=s.response_id, status=s.status, kind=s.kind, model=s.model,
                            prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens)
                       for s in res.llm_requests],
        "slack_posts": [p.json for p in res.posts],
        "slack_source": "integrations.slack",
        "span_names": sorted({s.name for s in res.spans}),
        "metric_names": metric_names,
        "log_records": len(res.logs),
    }
    assert res.json_summary is not None
    with open(res.json_summary, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, default=str)


def _clip_values(record: dict[str, Any], limit: int = 160) -> dict[str, Any]:
    """A log line for the terminal: long values (a stack trace with locals) cut to ``limit`` characters."""
    return {k: truncate(v, limit) if isinstance(v, str) else v for k, v in record.items()}
