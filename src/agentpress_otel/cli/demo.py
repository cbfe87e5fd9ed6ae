"""``agentpress-otel demo``: run the AgentPress-shaped backend, drive threads through it, show the telemetry.

Embedded mode (no endpoint configured): everything is captured in memory and rendered in the terminal.
With ``--endpoint`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT``) it is also exported over OTLP, and the output
ends with Grafana links. Either way, what is shown went through the same redaction stage as OTLP export.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import random
import string
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlparse

from rich.console import Console
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

DEMO_SERVICE = "agentpress-api"
MODELS = ("openai/gpt-5-mini", "openai/gpt-5", "openai/gpt-4.1-mini")
PROMPTS = {
    "full": "Check why last night's deploy failed and post a summary. My OpenAI key for the eval step is {secret}",
    "ok": "Summarise yesterday's incidents for the team channel.",
    "fail": "Draft the release notes for v2.3 from the merged pull requests.",
}
SCENARIO_CYCLE = ("full", "ok", "fail")
DASHBOARDS = (
    ("Agent overview", "agentpress-agent-overview"),
    ("LLM usage and cost", "agentpress-llm-usage"),
    ("Service health (RED)", "agentpress-service-health"),
    ("Thread explorer", "agentpress-thread-explorer"),
    ("Telemetry pipeline", "agentpress-telemetry-pipeline"),
)


@dataclass
class ThreadPlan:
    thread_id: str
    scenario: str
    model: str
    prompt: str
    agent_run_id: str = ""
    status: str = "pending"
    error: str | None = None
    trace_id: str | None = None
    feedback: dict[str, Any] | None = None


@dataclass
class ThreadStats:
    llm_calls: int = 0
    llm_errors: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    durations_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)
    run_error: bool = False

    @property
    def errors(self) -> int:
        return self.llm_errors + self.tool_errors + int(self.run_error)


def make_secret(seed: int) -> str:
    """A fake OpenAI-style key, built at run time so no key-shaped literal lives in the repository."""
    rnd = random.Random(seed * 7919 + 1)
    alphabet = string.ascii_letters + string.digits
    return "sk-" + "proj-" + "".join(rnd.choice(alphabet) for _ in range(40))


def plan_threads(n: int, seed: int, secret: str) -> list[ThreadPlan]:
    rnd = random.Random(seed)
    plans = []
    for i in range(n):
        scenario = SCENARIO_CYCLE[i % len(SCENARIO_CYCLE)]
        tid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        model = MODELS[0] if i < len(SCENARIO_CYCLE) else rnd.choice(MODELS)
        plans.append(ThreadPlan(tid, scenario, model, PROMPTS[scenario].format(secret=secret)))
    return plans


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (what a p95 over a handful of calls means)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def _hex(n: int, width: int) -> str:
    return format(n, f"0{width}x")


# --------------------------------------------------------------------------------------- analysis

def thread_stats(spans: Iterable[Any]) -> dict[str, ThreadStats]:
    """Per-thread LLM/tool numbers from finished spans (keyed by ``agentpress.thread.id``)."""
    from opentelemetry.trace import StatusCode

    out: dict[str, ThreadStats] = defaultdict(ThreadStats)
    for s in spans:
        a = _attrs(s)
        tid = a.get("agentpress.thread.id") or a.get("gen_ai.conversation.id")
        if not tid:
            continue
        st = out[str(tid)]
        op = a.get("gen_ai.operation.name")
        failed = s.status.status_code == StatusCode.ERROR
        if op == "chat":
            st.llm_calls += 1
            st.llm_errors += int(failed)
            st.input_tokens += int(a.get("gen_ai.usage.input_tokens", 0) or 0)
            st.output_tokens += int(a.get("gen_ai.usage.output_tokens", 0) or 0)
            st.cost_usd += float(a.get("agentpress.llm.cost_usd", 0.0) or 0.0)
            if s.end_time and s.start_time:
                st.durations_ms.append((s.end_time - s.start_time) / 1e6)
            if "gen_ai.response.time_to_first_chunk" in a:
                st.ttft_ms.append(float(a["gen_ai.response.time_to_first_chunk"]) * 1000)
            if a.get("gen_ai.response.id"):
                st.response_ids.append(str(a["gen_ai.response.id"]))
        elif op == "execute_tool":
            st.tool_calls += 1
            st.tool_errors += int(failed)
        elif op == "invoke_agent" and failed:
            st.run_error = True
    return dict(out)


def _short_error(span: Any) -> str:
    a = _attrs(span)
    et = str(a.get("error.type") or "error")
    desc = span.status.description or ""
    if desc and desc != et:
        return f"{et}: {desc[:90]}"
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
        if a.get("agentpress.request.id"):
            t.append(f"  request_id={a['agentpress.request.id']}", style="dim")
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
                sub.add(Text(f"prompt (as exported): {um[:140]}", style="dim italic"))
        for ev in events.get(s.context.span_id, []):
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
    traces = {s.context.trace_id for s in spans if _attrs(s).get("agentpress.thread.id") == thread_id}
    return [s for s in spans if s.context.trace_id in traces]


_FIELDS = {"agentpress.project.id": "project_id", "agentpress.thread.id": "thread_id",
           "agentpress.agent_run.id": "agent_run_id", "user.id": "user_id", "agentpress.request.id": "request_id"}


def log_json(lr: Any) -> dict[str, Any]:
    """An exported OTel log record as the JSON line a log backend would show."""
    rec = getattr(lr, "log_record", lr)
    a = dict(rec.attributes or {})
    out: dict[str, Any] = {"severity": rec.severity_text or str(rec.severity_number), "event": rec.body
                           if rec.body is not None else rec.event_name}
    for k, v in a.items():
        if k in _FIELDS:
            out[_FIELDS[k]] = v
        elif k in ("thread_id", "agent_run_id", "request_id", "project_id"):
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


# ------------------------------------------------------------------------------------------ driver

async def drive(base_url: str, plans: list[ThreadPlan], console: Console, timeout_s: float = 90.0) -> None:
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        with progress:
            task = progress.add_task(f"Driving {len(plans)} agent threads", total=len(plans))

            async def one(p: ThreadPlan) -> None:
                r = await client.post(f"/api/thread/{p.thread_id}/agent/start",
                                      json={"model_name": p.model, "prompt": p.prompt, "scenario": p.scenario})
                r.raise_for_status()
                p.agent_run_id = r.json()["agent_run_id"]
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    st = (await client.get(f"/api/agent-run/{p.agent_run_id}")).json()
                    if st["status"] in ("completed", "failed"):
                        p.status, p.error, p.trace_id = st["status"], st.get("error"), st.get("trace_id")
                        break
                    await asyncio.sleep(0.05)
                else:
                    p.status = "timeout"
                if p.status == "completed" and p.scenario in ("full", "ok"):
                    score, label = (1.0, "thumbs_up") if p.scenario == "full" else (0.0, "thumbs_down")
                    fr = await client.post(f"/api/thread/{p.thread_id}/feedback",
                                           json={"agent_run_id": p.agent_run_id, "score": score, "label": label})
                    p.feedback = {"score": score, "label": label, **fr.json()}
                progress.advance(task)

            await asyncio.gather(*(one(p) for p in plans))


def _import_litellm() -> None:
    import litellm

    litellm.suppress_debug_info = True  # LiteLLM prints "Give Feedback" banners to stdout on errors
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)  # its INFO lines would interleave with the output


def _send_fallback_alert(url: str, plan: ThreadPlan) -> None:
    """Used only when ``agentpress_otel.alerts.slack`` is not installed: one webhook post per failed run."""
    import httpx

    text = (f":rotating_light: *ERROR* agent run failed in `{DEMO_SERVICE}`\n{plan.error}\n"
            f"thread_id `{plan.thread_id}` · agent_run_id `{plan.agent_run_id}` · trace_id `{plan.trace_id}`")
    try:
        httpx.post(url, json={"text": text}, timeout=2.0)
    except httpx.HTTPError:
        pass


# -------------------------------------------------------------------------------------------- main

def run(*, threads: int = 3, endpoint: str | None = None, seed: int = 7, json_summary: str | None = None,
        protocol: str | None = None, worker: str = "auto", console: Console | None = None) -> int:
    """Run the demo; returns the process exit code."""
    t_start = time.monotonic()
    if console is None:
        console = Console(width=None if sys.stdout.isatty() else 140, highlight=False)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env_endpoint = os.environ.get("AGENTPRESS_OTEL_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    exporting = bool(endpoint or env_endpoint)
    if exporting:
        from agentpress_otel.cli.doctor import tcp_reachable

        target = str(endpoint or env_endpoint)
        reason = tcp_reachable(target, timeout_s=1.0)
        if reason is not None:
            # Exporting into nothing would only add retries and SDK warnings: show it in the terminal instead.
            console.print(f"[bold yellow]! {target}: {reason}.[/] Start a Collector with "
                          "`agentpress-otel stack up` (or check it with `agentpress-otel doctor`); "
                          "showing the telemetry in the terminal instead.")
            exporting, endpoint = False, None

    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agentpress_otel._harness.asgi_server import UvicornThread
    from agentpress_otel._harness.llm_server import LLMServer
    from agentpress_otel._harness.slack_stub import SlackStub
    from agentpress_otel.cli import demo_app

    mem_spans = InMemorySpanExporter()
    mem_logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    reader = InMemoryMetricReader()
    span_exp: Any = mem_spans
    log_exp: Any = mem_logs
    try:
        # What the terminal shows goes through the same redaction as OTLP export.
        from agentpress_otel.redaction import RedactingLogExporter, RedactingSpanExporter

        span_exp, log_exp = RedactingSpanExporter(mem_spans), RedactingLogExporter(mem_logs)
    except ImportError:
        console.print("[yellow]redaction module unavailable: showing unredacted telemetry[/]")

    secret = make_secret(seed)
    plans = plan_threads(max(1, threads), seed, secret)
    slack = SlackStub().start()
    llm = LLMServer(ttft_s=0.04, chunk_delay_s=0.004).start()
    server: UvicornThread | None = None
    tel: Any = None
    sink = io.StringIO()
    try:
        demo_app.configure_logging(sink)
        backend = demo_app.DemoBackend(llm_base_url=llm.base_url, seed=seed, worker=worker)
        options: dict[str, Any] = dict(
            service_name=DEMO_SERVICE, environment="demo", capture_content=True,
            slack_webhook_url=slack.url, export_otlp=exporting, metric_interval_s=5.0,
            additional_span_processors=[BatchSpanProcessor(span_exp, schedule_delay_millis=200)],
            additional_metric_readers=[reader],
            additional_log_processors=[BatchLogRecordProcessor(log_exp, schedule_delay_millis=200)],
        )
        if endpoint:
            options["endpoint"] = endpoint
            port = urlparse(endpoint).port
            options["protocol"] = protocol or ("http/protobuf" if port == 4318 else "grpc")
        elif protocol:
            options["protocol"] = protocol
        app = demo_app.create_app(backend, **options)
        import agentpress_otel

        tel = agentpress_otel.current()
        # LiteLLM takes seconds to import: overlap it with starting the API server.
        imp = threading.Thread(target=_import_litellm, name="import-litellm", daemon=True)
        imp.start()
        # log_config=None: uvicorn's default dictConfig() closes every existing logging handler, including
        # the Slack alert handler and the OTel log handler that instrument() just installed.
        server = UvicornThread(app, log_config=None).start()
        imp.join()
        t_ready = time.monotonic()
        mode = f"exporting to {tel.config.endpoint} ({tel.config.protocol})" if exporting else "embedded (in memory)"
        console.print(Panel.fit(
            f"[bold]AgentPress-shaped backend[/] on {server.url}  ·  worker: {backend.worker_kind}  ·  "
            f"LLM: LiteLLM → local OpenAI-compatible server {llm.base_url}\n"
            f"telemetry: {mode}  ·  integrations: {', '.join(tel.integrations) or '-'}  ·  "
            f"Slack stand-in: {slack.url.rsplit('/services', 1)[0]}",
            title="agentpress-otel demo", border_style="blue"))

        asyncio.run(drive(server.url, plans, console))
        t_driven = time.monotonic()
        server.stop()
        server = None
        tel.force_flush(timeout_s=5)

        failed = [p for p in plans if p.status == "failed"]
        alerts_available = _alerts_available()
        if failed and not alerts_available:
            for p in failed:
                _send_fallback_alert(slack.url, p)
        posts: list[Any] = []
        if failed:
            try:
                posts = slack.wait_for(1, timeout=5.0)
            except TimeoutError:
                posts = slack.posts
        tel.force_flush(timeout_s=5)
        spans = list(mem_spans.get_finished_spans())
        logs = list(mem_logs.get_finished_logs())
        stats = thread_stats(spans)
        return _render(console, plans, spans, logs, stats, posts, alerts_available, llm, tel, reader, exporting,
                       json_summary, secret, sink, (t_start, t_ready, t_driven))
    finally:
        if server is not None:
            server.stop()
        if tel is not None:
            tel.shutdown(timeout_s=3)
        llm.stop()
        slack.stop()


def _alerts_available() -> bool:
    try:
        import agentpress_otel.alerts.slack  # noqa: F401
    except ImportError:
        return False
    return True


def _render(console: Console, plans: list[ThreadPlan], spans: list[Any], logs: list[Any],
            stats: dict[str, ThreadStats], posts: list[Any], alerts_available: bool, llm: Any, tel: Any,
            reader: Any, exporting: bool, json_summary: str | None, secret: str, sink: io.StringIO,
            times: tuple[float, float, float]) -> int:
    shown = next((p for p in plans if p.scenario == "full"), plans[0])

    # 1. the span tree of one thread
    thread_spans = spans_of_thread(spans, shown.thread_id)
    console.print()
    console.rule(f"[bold]Span tree of thread {shown.thread_id}[/] (scenario: {shown.scenario})")
    console.print(build_tree(f"thread {shown.thread_id} · agent_run {shown.agent_run_id}", thread_spans, logs))

    # 2. one row per thread (fewer columns on a narrow terminal, so numbers are never cut)
    compact = console.width < 130
    cols = [("thread", "left"), ("scenario", "left"), ("model", "left"), ("run", "left"), ("LLM calls", "right"),
            ("in tok", "right"), ("out tok", "right"), ("cost USD", "right"), ("p50", "right"), ("p95", "right"),
            ("TTFT p50", "right"), ("tools", "right"), ("errors", "right")]
    dropped = {"model", "p50", "TTFT p50", "tools", "scenario"} if compact else set()
    table = Table(title="Per-thread LLM usage (from the exported spans)", show_lines=False)
    for col, just in cols:
        if col not in dropped:
            table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for p in plans:
        st = stats.get(p.thread_id, ThreadStats())
        row: dict[str, Any] = {
            "thread": p.thread_id[:8], "scenario": p.scenario, "model": p.model.split("/", 1)[-1],
            "run": Text(p.status, style="green" if p.status == "completed" else "bold red"),
            "LLM calls": str(st.llm_calls), "in tok": str(st.input_tokens), "out tok": str(st.output_tokens),
            "cost USD": f"{st.cost_usd:.6f}", "p50": _ms(percentile(st.durations_ms, 50)),
            "p95": _ms(percentile(st.durations_ms, 95)), "TTFT p50": _ms(percentile(st.ttft_ms, 50)),
            "tools": str(st.tool_calls), "errors": Text(str(st.errors), style="bold red" if st.errors else ""),
        }
        table.add_row(*(row[c] for c, _ in cols if c not in dropped))
    console.print()
    console.print(table)

    # 3. correlated log lines
    console.print()
    console.rule("[bold]Correlated log lines[/] (JSON, as exported; ids join them to the trace)")
    records = [log_json(lr) for lr in logs]
    mine = [r for r in records if r.get("thread_id") == shown.thread_id and r.get("trace_id")]
    if mine:
        wanted = ("starting agent run", "rate limited", "tool failed", "agent run completed", "user feedback")
        picked = [next(r for r in mine if str(r.get("event", "")).startswith(w)) for w in wanted
                  if any(str(r.get("event", "")).startswith(w) for r in mine)] or mine[:5]
        for r in picked[:5]:
            console.print(JSON.from_data(r, indent=None))
    else:
        from agentpress_otel.redaction import redact

        console.print("[yellow]no OTel log records from structlog (integration not available); "
                      "the app's own JSON lines, redacted:[/]")
        lines = [ln for ln in sink.getvalue().splitlines() if shown.thread_id in ln][:5]
        for ln in lines:
            console.print(Text(redact(ln)))

    # 4. Slack
    console.print()
    failed = [p for p in plans if p.status == "failed"]
    if posts:
        body = "\n\n".join(slack_text(p) for p in posts[:3])
        more = f"\n… and {len(posts) - 3} more" if len(posts) > 3 else ""
        src = "" if alerts_available else " (demo fallback sender: agentpress_otel.alerts.slack not installed)"
        console.print(Panel(Text(body + more), title=f"Slack message received by the local stand-in{src}",
                            border_style="red"))
    elif failed:
        console.print("[bold red]No Slack message arrived for the failed run(s).[/]")

    # 5. redaction
    console.print(f"[bold]Redaction:[/] the prompt of thread {shown.thread_id[:8]} contained an OpenAI key; "
                  "the exported spans and logs carry only the [REDACTED:...] tag shown above.")

    served = [dict(response_id=s.response_id, status=s.status, kind=s.kind, model=s.model,
                   prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens) for s in llm.requests]
    metric_names: list[str] = []
    try:
        data = reader.get_metrics_data()
        metric_names = sorted({m.name for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
                               for m in sm.metrics})
    except Exception:  # noqa: S110 - the metric list is informational only
        pass
    t_start, t_ready, t_driven = times
    elapsed = time.monotonic() - t_start
    console.print(f"[dim]{len(spans)} spans, {len(logs)} log records, {len(metric_names)} metrics, "
                  f"{len(llm.requests)} requests served by the local LLM server · start-up (LiteLLM import) "
                  f"{t_ready - t_start:.1f} s, workload {t_driven - t_ready:.1f} s, total {elapsed:.1f} s[/]")

    if exporting:
        console.print()
        console.rule(f"[bold]Grafana[/] ({tel.config.grafana_url}; dashboards in folder AgentPress)")
        for title, url in grafana_links(tel.config.grafana_url, shown.thread_id, shown.trace_id):
            # soft_wrap: long URLs stay on one line so terminals can open them
            console.print(Text(f"{title}: ", style="bold") + Text(url, style=f"link {url}"), soft_wrap=True)
    else:
        console.print("[dim]Send this to a Collector: agentpress-otel demo --endpoint http://localhost:4317 "
                      "(see `agentpress-otel stack up`).[/]")

    if json_summary:
        summary = {
            "mode": "export" if exporting else "embedded",
            "elapsed_s": round(elapsed, 3),
            "demo_secret": secret,
            "shown_thread": shown.thread_id,
            "threads": [
                {"thread_id": p.thread_id, "scenario": p.scenario, "agent_run_id": p.agent_run_id,
                 "status": p.status, "error": p.error, "trace_id": p.trace_id, "feedback": p.feedback,
                 **{k: v for k, v in vars(stats.get(p.thread_id, ThreadStats())).items() if k != "durations_ms"
                    and k != "ttft_ms"},
                 "p50_ms": percentile(stats.get(p.thread_id, ThreadStats()).durations_ms, 50),
                 "p95_ms": percentile(stats.get(p.thread_id, ThreadStats()).durations_ms, 95)}
                for p in plans],
            "llm_server": served,
            "slack_posts": [p.json for p in posts],
            "slack_source": "alerts.slack" if alerts_available else "demo-fallback",
            "span_names": sorted({s.name for s in spans}),
            "metric_names": metric_names,
            "log_records": len(logs),
        }
        with open(json_summary, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, default=str)

    ok = bool(spans) and all(p.status in ("completed", "failed") for p in plans)
    if not ok:
        console.print("[bold red]demo did not complete: some runs timed out or no spans were recorded[/]")
    return 0 if ok else 1

