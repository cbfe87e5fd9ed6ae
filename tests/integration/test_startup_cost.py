"""What ``instrument()`` loads, and when: each test runs in a fresh interpreter (import-time behaviour).

* Libraries the app has not imported (httpx, redis-py, Dramatiq) are not imported by ``instrument()``;
  they are patched when the app imports them, and a real request through them is traced.
* LiteLLM's tokenizer is loaded only when a stream that may need a usage estimate starts: no background
  warm-up competes with ``instrument()`` or the first (non-streaming) calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agentpress_otel._harness.llm_server import LLMServer

pytestmark = pytest.mark.integration


def _run_fresh_python(code: str, *, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a new interpreter; it must print ``ok`` last. Returns its stdout."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", **(env or {})})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout[-1000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def server() -> Iterator[LLMServer]:
    with LLMServer(ttft_s=0.02, chunk_delay_s=0.002) as srv:
        yield srv


_MEMORY = (
    "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
    "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
    "mem = InMemorySpanExporter()\n"
)


def test_instrument_does_not_import_unused_libraries_and_patches_them_on_import(server: LLMServer) -> None:
    """instrument() imports none of httpx, redis, dramatiq; an httpx request made after the app imports it is traced."""
    code = (
        "import sys\n" + _MEMORY
        + "import agentpress_otel\n"
        "tel = agentpress_otel.instrument(service_name='startup', export_otlp=False,\n"
        "                                 additional_span_processors=[SimpleSpanProcessor(mem)])\n"
        "for lib in ('httpx', 'redis', 'dramatiq'):\n"
        "    assert lib not in sys.modules, lib + ' imported by instrument()'\n"
        "assert {'httpx', 'redis', 'dramatiq'} <= set(tel.integrations), tel.integrations\n"
        "import httpx\n"  # the app imports it later: patched now
        "from opentelemetry import trace\n"
        "with trace.get_tracer('t').start_as_current_span('parent'):\n"
        f"    r = httpx.get('{server.base_url}/models')\n"
        "names = [s.name for s in mem.get_finished_spans()]\n"
        "assert any(n.startswith('GET') for n in names), names\n"
        "assert tel.shutdown(timeout_s=5)\n"
        "print('ok')\n"
    )
    _run_fresh_python(code, timeout=120)


def test_shutdown_before_the_import_leaves_the_library_unpatched() -> None:
    """A shutdown before the app imports httpx leaves httpx unpatched when it is imported later."""
    code = (
        "import sys, agentpress_otel\n"
        "tel = agentpress_otel.instrument(service_name='startup', export_otlp=False)\n"
        "assert tel.shutdown(timeout_s=5)\n"
        "assert 'httpx' not in sys.modules\n"
        "import httpx\n"
        "assert not hasattr(httpx.HTTPTransport.handle_request, '__wrapped__')\n"
        "print('ok')\n"
    )
    _run_fresh_python(code, timeout=120)


def test_litellm_tokenizer_loads_only_for_a_stream_that_may_need_an_estimate(server: LLMServer) -> None:
    """No tokenizer warm-up for non-streaming or include_usage calls; it starts only for a stream without usage."""
    code = (
        "import threading, sys\n" + _MEMORY
        + "import litellm\n"
        "import agentpress_otel\n"
        "tel = agentpress_otel.instrument(service_name='startup', export_otlp=False, integrations=['litellm'],\n"
        "                                 additional_span_processors=[SimpleSpanProcessor(mem)])\n"
        "def warming():\n"
        "    return [t for t in threading.enumerate() if t.name == 'agentpress-otel-tokenizer']\n"
        f"kw = dict(model='openai/gpt-5-mini', api_base='{server.base_url}', api_key='sk-test',\n"
        "          messages=[{'role': 'user', 'content': 'hi'}])\n"
        "assert not warming()\n"
        "litellm.completion(**kw)\n"
        "chunks = list(litellm.completion(stream=True, stream_options={'include_usage': True}, **kw))\n"
        "assert not warming(), 'tokenizer warm-up started although no estimate can be needed'\n"
        "import agentpress_otel.integrations._litellm_stream as ap\n"
        "assert not ap._warmed\n"
        "chunks = list(litellm.completion(stream=True, **kw))\n"  # may end without usage: warm now
        "assert ap._warmed\n"
        "spans = [s for s in mem.get_finished_spans() if s.name.startswith('chat')]\n"
        "assert len(spans) == 3, [s.name for s in spans]\n"
        "tel.shutdown(timeout_s=5)\n"
        "print('ok')\n"
    )
    _run_fresh_python(code, timeout=240, env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
