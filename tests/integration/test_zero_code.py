"""Zero-code start: ``opentelemetry-instrument uvicorn app:app`` on an app that never imports agentpress_otel.

Real processes: the ``opentelemetry-instrument`` console script of the pinned ``opentelemetry-instrumentation``,
real uvicorn serving a FastAPI app created at import (after the distro and configurator ran), real LiteLLM
against the local OpenAI-compatible stand-in, and a real OTLP/gRPC receiver. What instrument() sets up must
arrive: one SERVER span named by route (the stock FastAPI instrumentor skipped, so no second one), the LiteLLM
span in the same trace, and the log record correlated with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from agentpress_otel._harness._proc import free_port, http_ok, wait_until
from agentpress_otel._harness.llm_server import LLMServer
from harness.otlp_sink import OTLPSink, any_value, attrs_to_dict

pytestmark = pytest.mark.integration

SERVER = 2  # OTLP SpanKind

APP = textwrap.dedent("""
    import logging, os

    import litellm
    from fastapi import FastAPI

    log = logging.getLogger("zc.app")
    app = FastAPI()

    @app.get("/ask/{thread_id}")
    async def ask(thread_id: str) -> dict:
        await litellm.acompletion(model="openai/gpt-5-mini", api_base=os.environ["LLM_BASE"], api_key="sk-test",
                                  messages=[{"role": "user", "content": "hello [[words:3]]"}])
        log.warning("answered %s", thread_id)
        return {"ok": True}

    @app.get("/health")
    def health() -> dict:
        return {"ok": True}
""")


def test_opentelemetry_instrument_uvicorn_sets_up_what_instrument_does(tmp_path: Path) -> None:
    """``opentelemetry-instrument uvicorn`` sets up what instrument() does, flushing everything at SIGTERM."""
    (tmp_path / "zcapp.py").write_text(APP)
    bindir = Path(sys.executable).parent
    port = free_port()
    with OTLPSink() as sink, LLMServer() as llm:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
        env.update({
            "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}",
            "OTEL_SERVICE_NAME": "zero-code",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint,
            # Nothing is exported while the server runs: all of it must come from the flush at SIGTERM.
            "AGENTPRESS_OTEL_SCHEDULE_DELAY_S": "30",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LLM_BASE": llm.base_url,
        })
        proc = subprocess.Popen(
            [str(bindir / "opentelemetry-instrument"), "uvicorn", "zcapp:app", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_until(lambda: proc.poll() is None and http_ok(f"http://127.0.0.1:{port}/health"), timeout=90,
                       what="uvicorn up")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ask/t-1", timeout=30) as resp:
                assert resp.status == 200
            # SIGTERM right away, as a rollout does: the flush at stop (LiteLLM imported) must deliver everything.
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        got = [s.name for s in sink.spans()], [any_value(r.body) for r in sink.log_records()]
        assert any(any_value(r.body) == "answered t-1" for r in sink.log_records()), f"{got}\n{out[-3000:]}"
        spans = sink.spans()
        servers = [s for s in spans if s.kind == SERVER]
        assert [s.name for s in servers] == ["GET /ask/{thread_id}"], [s.name for s in spans]
        server = servers[0]
        llm_spans = [s for s in spans if "gen_ai.request.model" in attrs_to_dict(s.attributes)]
        assert llm_spans, [s.name for s in spans]
        assert all(s.trace_id == server.trace_id for s in llm_spans)
        assert attrs_to_dict(llm_spans[0].attributes)["gen_ai.request.model"] == "gpt-5-mini"
        (record,) = [r for r in sink.log_records() if any_value(r.body) == "answered t-1"]
        assert record.trace_id == server.trace_id
        assert sink.span_resources()[0]["service.name"] == "zero-code"
