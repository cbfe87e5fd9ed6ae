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
from urllib.parse import quote

from rich.console import Console
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

DEMO_SERVICE = "agentpress-api"
MODELS = ("openai/gpt-5-mini", "openai/gpt-5", "openai/gpt-4.1-mini")
_KEY_PROMPT = "Check why last night's deploy failed and post a summary. My OpenAI key for the eval step is {secret}"
PROMPTS = {
    "full": _KEY_PROMPT,
    "all": _KEY_PROMPT,
    "ok": "Summarise yesterday's incidents for the team channel.",
    "fail": "Draft the release notes for v2.3 from the merged pull requests.",
}
SCENARIO_CYCLE = ("full", "ok", "fail")
#: Scenarios that carry the planted secret and are shown as the span tree.
SHOWN_SCENARIOS = ("full", "all")
#: The workload cases; every run covers all of them, whatever the number of threads.
CASES = ("429 retried", "tool failure", "slow LLM call", "failed run (Slack alert)", "redacted secret", "user score")
DASHBOARDS = (
    ("Agent overview", "agentpress-agent-overview"),
    ("LLM usage and cost", "agentpress-llm-usage"),
    ("Service health (RED)", "agentpress-service-health"),
    ("Thread explorer", "agentpress-thread-explorer"),
    ("Frontend", "agentpress-frontend"),
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


def scenario_order(n: int) -> list[str]:
    """Scenario per thread. From 3 threads on, ``full``/``ok``/``fail`` in turn; with fewer, the first thread
    runs ``all`` (every case of ``full`` plus a final provider failure that fails the run and alerts Slack),
    so even ``--threads 1`` shows every case.

    Example::

        scenario_order(2)  # ["all", "ok"]
    """
    if n < len(SCENARIO_CYCLE):
        return ["all", "ok"][:n]
    return [SCENARIO_CYCLE[i % len(SCENARIO_CYCLE)] for i in range(n)]


def plan_threads(n: int, seed: int, secret: str) -> list[ThreadPlan]:
    rnd = random.Random(seed)
    plans = []
    for i, scenario in enumerate(scenario_order(n)):
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
                # The user scores the answer; in "all" the (failed) run still gets a thumbs-down.
                if (p.status == "completed" and p.scenario in ("full", "ok")) or (
                        p.status in ("completed", "failed") and p.scenario == "all"):
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
    """Used only when ``agentpress_otel.integrations.slack`` is not installed: one webhook post per failed run."""
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
    """Run the demo; returns the process exit code (1: the run or its export failed; 2: invalid configuration)."""
    t_start = time.monotonic()
    if console is None:
        # Not a terminal: 140 columns, unless COLUMNS says otherwise (rich reads it).
        console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140, highlight=False)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from agentpress_otel import _selftel
    from agentpress_otel._config import ConfigError
    from agentpress_otel.cli import doctor

    base_options: dict[str, Any] = dict(service_name=DEMO_SERVICE, environment="demo", capture_content=True)
    try:
        # Validate first: a bad variable is one clear line, not a traceback from inside instrument().
        cfg = doctor.load_effective_config(endpoint, protocol, base_options)
    except ConfigError as exc:
        console.print(Text("✗ invalid configuration: ", style="bold red") + Text(str(exc)))
        return 2
    ignored = doctor.config_warnings(cfg)
    if ignored:
        # instrument() would run with these values replaced by defaults; a demo should show what was asked.
        for msg in ignored:
            console.print(Text("✗ invalid configuration: ", style="bold red") + Text(msg))
        return 2
    env_endpoint = any((os.environ.get(v) or "").strip() for v in ("AGENTPRESS_OTEL_ENDPOINT",
                                                                   "OTEL_EXPORTER_OTLP_ENDPOINT"))
    exporting = bool(endpoint) or env_endpoint
    if exporting:
        reason = doctor.tcp_reachable(cfg.endpoint, timeout_s=1.0)
        if reason is not None:
            # Exporting into nothing would only add retries and SDK warnings: show it in the terminal instead.
            console.print(f"[bold yellow]! {cfg.endpoint}: {reason}.[/] Start a Collector with "
                          "`agentpress-otel stack up` (or check it with `agentpress-otel doctor`); "
                          "showing the telemetry in the terminal instead.")
            exporting = False
        else:
            # Something listens: make sure it speaks OTLP in the configured protocol before running.
            bad = [f for f in doctor.check_endpoint(cfg, timeout_s=3.0) if f.level == "fail"]
            if bad:
                for f in bad:
                    console.print(Text(f"✗ {f.what}: ", style="bold red") + Text(f.detail))
                console.print(Text(f"✗ {cfg.endpoint} does not accept OTLP over {cfg.protocol}: nothing was run. "
                                   "Fix the endpoint or protocol (see `agentpress-otel doctor`), or unset it to "
                                   "see the telemetry in the terminal.", style="bold red"))
                return 1
    dropped_before = {sig: _selftel.dropped(sig) for sig in _EXPORTED_SIGNALS}

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
            **base_options, slack_webhook_url=slack.url, export_otlp=exporting, metric_interval_s=5.0,
            additional_span_processors=[BatchSpanProcessor(span_exp, schedule_delay_millis=200)],
            additional_metric_readers=[reader],
            additional_log_processors=[BatchLogRecordProcessor(log_exp, schedule_delay_millis=200)],
        )
        if exporting:
            # What was checked above, including a protocol guessed from port 4318.
            options["endpoint"], options["protocol"] = cfg.endpoint, cfg.protocol
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
        flushed = tel.force_flush(timeout_s=10 if exporting else 5)
        spans = list(mem_spans.get_finished_spans())
        logs = list(mem_logs.get_finished_logs())
        stats = thread_stats(spans)
        lost = {sig: _selftel.dropped(sig) - n for sig, n in dropped_before.items()}
        export = ExportOutcome(exporting, flushed, {k: v for k, v in lost.items() if v > 0})
        return _render(console, plans, spans, logs, stats, posts, alerts_available, llm, tel, reader, export,
                       json_summary, secret, sink, (t_start, t_ready, t_driven), backend.scenarios)
    finally:
        if server is not None:
            server.stop()
        if tel is not None:
            tel.shutdown(timeout_s=3)
        llm.stop()
        slack.stop()


#: Signals whose losses ``agentpress_otel.exporter.dropped`` counts (``attributes`` are truncations, not losses).
_EXPORTED_SIGNALS = ("spans", "logs", "metrics")
_NOUNS = {"spans": "spans", "logs": "log records", "metrics": "metric points"}


@dataclass
class ExportOutcome:
    """What happened to the OTLP export: whether it was on, flushed in time, and items lost per signal."""

    exporting: bool
    flushed: bool = True
    lost: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.exporting or (self.flushed and not self.lost)

    def problem(self, endpoint: str) -> str | None:
        """One line naming what did not reach ``endpoint``, or None."""
        if self.ok:
            return None
        parts = [f"{n} {_NOUNS.get(sig, sig)}" for sig, n in sorted(self.lost.items())]
        what = (", ".join(parts) + " were lost (agentpress_otel.exporter.dropped)") if parts else ""
        late = "" if self.flushed else "the export did not finish within 10 s"
        return f"export to {endpoint} failed: " + "; ".join(x for x in (what, late) if x)


def _alerts_available() -> bool:
    try:
        import agentpress_otel.integrations.slack  # noqa: F401
    except ImportError:
        return False
    return True


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


def _exported_text(items: Iterable[Any]) -> str:
    out = []
    for it in items:
        fn = getattr(it, "to_json", None) or getattr(getattr(it, "log_record", None), "to_json", None)
        out.append(fn() if fn is not None else repr(it))
    return "\n".join(out)


@dataclass
class RedactionCheck:
    """The planted secret against everything that left the process (spans, logs, Slack posts)."""

    leaked_in: list[str]
    tagged: bool

    @property
    def ok(self) -> bool:
        return not self.leaked_in and self.tagged


def check_redaction(secret: str, spans: Sequence[Any], logs: Sequence[Any], posts: Sequence[Any],
                    shown_spans: Sequence[Any]) -> RedactionCheck:
    """Whether ``secret`` is absent from every exported span, log record and Slack post, and its
    ``[REDACTED:...]`` tag is in the shown thread's exported spans."""
    texts = {"spans": _exported_text(spans), "log records": _exported_text(logs),
             "Slack posts": "\n".join(json.dumps(p.json) if p.json is not None else
                                      p.body.decode("utf-8", "replace") for p in posts)}
    leaked = [name for name, text in texts.items() if secret in text]
    return RedactionCheck(leaked, "[REDACTED:openai_key:" in _exported_text(shown_spans))


def _render(console: Console, plans: list[ThreadPlan], spans: list[Any], logs: list[Any],
            stats: dict[str, ThreadStats], posts: list[Any], alerts_available: bool, llm: Any, tel: Any,
            reader: Any, export: ExportOutcome, json_summary: str | None, secret: str, sink: io.StringIO,
            times: tuple[float, float, float], scenarios: dict[str, Any]) -> int:
    exporting = export.exporting
    shown = next((p for p in plans if p.scenario in SHOWN_SCENARIOS), plans[0])
    skipped = _skipped_cases(plans)
    if skipped:
        console.print(f"[yellow]! not covered by this run: {', '.join(skipped)}[/]")

    # 1. the span tree of one thread
    thread_spans = spans_of_thread(spans, shown.thread_id)
    console.print()
    console.rule(f"[bold]Span tree of thread {shown.thread_id}[/] (scenario: {shown.scenario})")
    console.print(build_tree(f"thread {shown.thread_id} · agent_run {shown.agent_run_id}", thread_spans, logs))

    # 2. one row per thread
    console.print()
    console.print(thread_table(plans, stats, console.width))

    # 3. correlated log lines
    console.print()
    console.rule("[bold]Correlated log lines[/] (JSON, as exported; ids join them to the trace)")
    records = [log_json(lr) for lr in logs]
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
        src = "" if alerts_available else " (demo fallback sender: agentpress_otel.integrations.slack not installed)"
        console.print(Panel(Text(body + more), title=f"Slack message received by the local stand-in{src}",
                            border_style="red"))
    elif failed:
        console.print("[bold red]No Slack message arrived for the failed run(s).[/]")

    # 5. redaction, checked on what was exported rather than asserted
    red = check_redaction(secret, spans, logs, posts, thread_spans)
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

    export_problem = export.problem(tel.config.endpoint)
    # A failed export is reported last, below, without dashboard links (they would not show this run).
    if exporting and not export_problem:
        console.print()
        console.print(f"[green]✓ everything was exported to {tel.config.endpoint} ({tel.config.protocol})[/]")
        grafana = tel.config.grafana_url
        from agentpress_otel._harness._proc import http_ok

        grafana_up = http_ok(f"{grafana.rstrip('/')}/api/health", timeout=0.5)
        if grafana_up:
            console.rule(f"[bold]Grafana[/] ({grafana}; dashboards in folder AgentPress)")
        else:
            console.rule("[bold]Grafana links[/]")
            console.print(f"[yellow]! no Grafana answers at {grafana}: these links need the compose stack's "
                          "Grafana (`docker compose up -d`, see the README; `agentpress-otel stack up` has none) "
                          "or AGENTPRESS_OTEL_GRAFANA_URL pointing at yours.[/]")
        for title, url in grafana_links(grafana, shown.thread_id, shown.trace_id):
            # soft_wrap: long URLs stay on one line so terminals can open them
            console.print(Text(f"{title}: ", style="bold") + Text(url, style=f"link {url}"), soft_wrap=True)
    elif not exporting:
        console.print("[dim]Send this to a Collector: agentpress-otel demo --endpoint http://localhost:4317 "
                      "(see `agentpress-otel stack up`).[/]")

    if json_summary:
        sc = scenarios.get(shown.scenario)
        summary = {
            "mode": "export" if exporting else "embedded",
            "elapsed_s": round(elapsed, 3),
            "demo_secret": secret,
            "shown_thread": shown.thread_id,
            "shown_slow_delay_s": getattr(sc, "slow_s", None),
            "shown_logs": picked,
            "redaction_ok": red.ok,
            "export_ok": export.ok,
            "export_lost": export.lost,
            "skipped_cases": skipped,
            "threads": [
                {"thread_id": p.thread_id, "scenario": p.scenario, "agent_run_id": p.agent_run_id,
                 "status": p.status, "error": p.error, "trace_id": p.trace_id, "feedback": p.feedback,
                 **{k: v for k, v in vars(stats.get(p.thread_id, ThreadStats())).items() if k != "durations_ms"
                    and k != "ttft_ms"},
                 "chat_durations_ms": stats.get(p.thread_id, ThreadStats()).durations_ms,
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
    if exporting and export_problem:
        console.print()
        console.print(Text(f"✗ {export_problem}. Check the endpoint with `agentpress-otel doctor`.",
                           style="bold red"))
    return 0 if ok and red.ok and export.ok else 1


def _clip_values(record: dict[str, Any], limit: int = 160) -> dict[str, Any]:
    """A log line for the terminal: long values (a stack trace with locals) cut to ``limit`` characters."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, str) and len(v) > limit:
            v = f"{v[:limit]}… ({len(v)} chars)"
        out[k] = v
    return out


def _skipped_cases(plans: Sequence[ThreadPlan]) -> list[str]:
    """Workload cases (see ``CASES``) that no planned thread exercises."""
    have = {p.scenario for p in plans}
    covered: set[str] = set()
    if have & {"full", "all"}:
        covered |= {"429 retried", "tool failure", "slow LLM call", "redacted secret", "user score"}
    if have & {"fail", "all"}:
        covered.add("failed run (Slack alert)")
    return [c for c in CASES if c not in covered]
