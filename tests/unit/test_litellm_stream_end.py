"""The LiteLLM stream proxy's bookkeeping: chunk stamps past the gap limit, and its span ending when the proxy is
dropped inside a reference cycle, and at interpreter exit.

The proxy's end-of-life hook is a weak reference kept in a module registry (what ``weakref.finalize`` does, at a
fraction of its cost): these are the two ways a cheaper hook could lose a span (a weak reference that is itself
garbage never calls back; an exit hook registered in the wrong order runs after the exporters are shut down).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from typing import Any

from agentpress_otel.genai import LLMCall
from agentpress_otel.integrations._litellm_stream import _LIVE, _Stream, _StreamState
from agentpress_otel.testing import Kit

# Usage in the first chunk: a stream dropped after it needs no token estimate (which would import LiteLLM).
CHUNKS = [{"id": "c-1", "model": "gpt-5-mini", "choices": [{"delta": {"content": "hi"}}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
          {"choices": [{"delta": {"content": " there"}, "finish_reason": "stop"}]}]


def _proxy() -> Any:
    call = LLMCall(model="gpt-5-mini", provider="openai", stream=True).start()
    return _Stream(iter(CHUNKS), _StreamState(call, "gpt-5-mini", None), is_async=False)


def test_a_proxy_dropped_in_a_reference_cycle_ends_its_span_once(kit: Kit) -> None:
    """A proxy only the cyclic GC can free ends its span (closed early) at the collection, and leaves no entry."""
    proxy = _proxy()
    assert next(proxy)["id"] == "c-1"
    holder: dict[str, Any] = {"proxy": proxy}
    holder["self"] = holder  # only the cyclic GC can free the proxy now
    before = len(_LIVE)
    del proxy, holder
    assert not kit.spans("chat")  # not freed yet: still in the cycle
    gc.collect()
    (span,) = kit.spans("chat gpt-5-mini")
    a = dict(span.attributes or {})
    assert a["agentpress.closed_early"] is True and a["gen_ai.response.id"] == "c-1"
    assert len(_LIVE) == before - 1  # and nothing left behind for it


def test_an_ended_stream_leaves_nothing_registered(kit: Kit) -> None:
    """An exhausted stream unregisters itself; freeing its proxy later does not end the span a second time."""
    before = len(_LIVE)
    proxy = _proxy()
    assert len(_LIVE) == before + 1
    assert [c.get("id") for c in proxy] == ["c-1", None]
    assert len(_LIVE) == before
    del proxy
    gc.collect()
    (span,) = kit.spans("chat gpt-5-mini")  # once, by exhaustion, not again when freed
    a = dict(span.attributes or {})
    assert "agentpress.closed_early" not in a and a["gen_ai.response.finish_reasons"] == ("stop",)


_AT_EXIT = """
import atexit, sys
from agentpress_otel.testing import make_kit
from agentpress_otel.genai import LLMCall
from agentpress_otel.integrations._litellm_stream import _Stream, _StreamState

kit = make_kit().__enter__()

def report():  # registered before the first stream: runs after the proxy's own exit hook
    spans = kit.spans("chat")
    print("spans", len(spans), dict(spans[0].attributes or {}).get("agentpress.closed_early") if spans else None)
    sys.stdout.flush()

atexit.register(report)
call = LLMCall(model="gpt-5-mini", provider="openai", stream=True).start()
chunks = iter([{"id": "c-1", "choices": [{"delta": {"content": "hi"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
               {"choices": [{"delta": {"content": " there"}}]}])
KEEP = _Stream(chunks, _StreamState(call, "gpt-5-mini", None), is_async=False)
next(KEEP)  # still open, still referenced, when the interpreter exits
"""


def test_a_stream_still_open_at_exit_ends_its_span_before_the_exporters_go() -> None:
    """In a fresh interpreter, a stream still open at exit has its span ended (closed early) before later-run exit
    hooks, which registered earlier, read the exported spans."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # offline, should anything import LiteLLM
    out = subprocess.run([sys.executable, "-c", _AT_EXIT], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "spans 1 True" in out.stdout, (out.stdout, out.stderr[-2000:])


def test_chunk_stamps_past_the_gap_limit_are_counted_not_kept(kit: Kit) -> None:
    """The proxy stamps chunks itself while the call's list has room, then hands over to call.chunk(): every chunk
    is counted, the time per output chunk gets the first MAX_CHUNK_GAPS gaps, each gap once."""
    from agentpress_otel.genai._llm import MAX_CHUNK_GAPS

    n = MAX_CHUNK_GAPS + 50
    call = LLMCall(model="gpt-5-mini", provider="openai", stream=True).start()
    chunks = [{"choices": [{"delta": {"content": "x"}}]}] * (n - 1) + [CHUNKS[0]]
    assert len(list(_Stream(iter(chunks), _StreamState(call, "gpt-5-mini", None), is_async=False))) == n
    assert call.chunks == n
    assert kit.metric_count("gen_ai.client.operation.time_per_output_chunk") == MAX_CHUNK_GAPS
    assert kit.metric_count("gen_ai.client.operation.time_to_first_chunk") == 1
