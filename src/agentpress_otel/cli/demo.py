"""``agentpress-otel demo``: run the AgentPress-shaped backend, drive threads through it, show the telemetry.

Embedded mode (no endpoint configured): everything is captured in memory and rendered in the terminal.
With ``--endpoint`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT``) it is also exported over OTLP, and the output
ends with Grafana links. Either way, what is shown went through the same redaction stage as OTLP export.

The workload is planned in ``demo_plan``, shown by ``demo_render``; this module runs it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from agentpress_otel.cli.demo_plan import DEMO_SERVICE, ExportOutcome, ThreadPlan, make_secret, plan_threads
from agentpress_otel.cli.demo_render import DemoResult, render


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
    exporting = _export_wanted(console, cfg, endpoint, doctor)
    if exporting is None:
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
    from agentpress_otel.redaction import RedactingLogExporter, RedactingSpanExporter

    mem_spans = InMemorySpanExporter()
    mem_logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    reader = InMemoryMetricReader()
    # What the terminal shows goes through the same redaction as OTLP export.
    span_exp, log_exp = RedactingSpanExporter(mem_spans), RedactingLogExporter(mem_logs)

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

        posts: list[Any] = []
        if any(p.status == "failed" for p in plans):
            try:
                posts = slack.wait_for(1, timeout=5.0)
            except TimeoutError:
                posts = slack.posts
        flushed = tel.force_flush(timeout_s=10 if exporting else 5)
        lost = {sig: _selftel.dropped(sig) - n for sig, n in dropped_before.items()}
        return render(console, DemoResult(
            plans=plans, spans=list(mem_spans.get_finished_spans()), logs=list(mem_logs.get_finished_logs()),
            posts=posts, llm_requests=list(llm.requests), config=tel.config,
            reader=reader, export=ExportOutcome(exporting, flushed, {k: v for k, v in lost.items() if v > 0}),
            secret=secret, sink=sink, times=(t_start, t_ready, t_driven), scenarios=backend.scenarios,
            json_summary=json_summary))
    finally:
        if server is not None:
            server.stop()
        if tel is not None:
            tel.shutdown(timeout_s=3)
        llm.stop()
        slack.stop()


#: Signals whose losses ``agentpress_otel.exporter.dropped`` counts (``attributes`` are truncations, not losses).
_EXPORTED_SIGNALS = ("spans", "logs", "metrics")


def _export_wanted(console: Console, cfg: Any, endpoint: str | None, doctor: Any) -> bool | None:
    """Whether to export over OTLP: asked for, and something listens there. ``None``: it listens but does not
    speak OTLP in the configured protocol (reported; the demo must not run)."""
    env_endpoint = any((os.environ.get(v) or "").strip() for v in ("AGENTPRESS_OTEL_ENDPOINT",
                                                                   "OTEL_EXPORTER_OTLP_ENDPOINT"))
    if not (endpoint or env_endpoint):
        return False
    reason = doctor.tcp_reachable(cfg.endpoint, timeout_s=1.0)
    if reason is not None:
        # Exporting into nothing would only add retries and SDK warnings: show it in the terminal instead.
        console.print(f"[bold yellow]! {cfg.endpoint}: {reason}.[/] Start a Collector with "
                      "`agentpress-otel stack up` (or check it with `agentpress-otel doctor`); "
                      "showing the telemetry in the terminal instead.")
        return False
    # Something listens: make sure it speaks OTLP in the configured protocol before running.
    bad = [f for f in doctor.check_endpoint(cfg, timeout_s=3.0) if f.level == "fail"]
    if not bad:
        return True
    for f in bad:
        console.print(Text(f"✗ {f.what}: ", style="bold red") + Text(f.detail))
    console.print(Text(f"✗ {cfg.endpoint} does not accept OTLP over {cfg.protocol}: nothing was run. "
                       "Fix the endpoint or protocol (see `agentpress-otel doctor`), or unset it to "
                       "see the telemetry in the terminal.", style="bold red"))
    return None
