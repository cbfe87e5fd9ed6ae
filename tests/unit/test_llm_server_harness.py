"""The loopback LLM server's request log across ``reset()``: what the LLM-call tests compare against."""

from __future__ import annotations

import time

import httpx
import pytest

from agentpress_otel._harness.llm_server import LLMServer


def _chat(base: str, prompt: str, timeout: float) -> httpx.Response:
    return httpx.post(f"{base}/chat/completions", timeout=timeout,
                      json={"model": "m", "messages": [{"role": "user", "content": prompt}]})


def test_a_request_from_before_reset_is_not_recorded_after_it() -> None:
    """A slow request whose client gave up ends its sleep after the next test's reset(): it must not land in that
    test's log (it did, and failed a traceparent test in CI); requests after the reset are recorded."""
    with LLMServer() as srv:
        with pytest.raises(httpx.TimeoutException):
            _chat(srv.base_url, "given up [[slow:1]]", timeout=0.2)
        srv.reset()
        assert _chat(srv.base_url, "after the reset", timeout=5).status_code == 200
        time.sleep(1.3)  # the given-up request's sleep is over and it has been served
        assert [r.prompt for r in srv.requests] == ["after the reset"]
        _chat(srv.base_url, "same generation [[slow:0.3]]", timeout=5)
        assert [r.prompt for r in srv.requests] == ["after the reset", "same generation [[slow:0.3]]"]
