"""Hostile values at the public API and in apps never escape into the caller (issue 14's partial list).

* A FastAPI endpoint raising an exception whose ``__str__`` raises, served by real uvicorn: the client gets
  500, the server span is ERROR with the exception's type, and uvicorn logs the app's exception, not ours.
* A log call with bad format arguments keeps the record (template + error) instead of losing it.
* ``agent_run``/``llm_call`` with a model whose ``__bool__``/``__str__``/``__repr__`` raise; ``instrument``
  with non-string integration names (``ConfigError``); ``cost_usd`` with a non-string model (``None``);
  ``set_prices`` with bad entries (one ``ValueError``).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.trace import StatusCode

import agentpress_otel
from agentpress_otel._harness._proc import wait_until
from agentpress_otel._harness.asgi_server import UvicornThread
from agentpress_otel.genai import agent_run, llm_call, prices
from agentpress_otel.testing import capture

pytestmark = pytest.mark.integration


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str of the app's exception failed")


class Evil:
    def __bool__(self) -> bool:
        raise RuntimeError("bool")

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __repr__(self) -> str:
        raise RuntimeError("repr")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_exception_with_raising_str_is_recorded_and_not_replaced() -> None:
    """An exception whose ``str()`` raises is recorded on the span and reaches the app unchanged."""
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise UnprintableError

    seen = _Records()
    with capture(app=app, integrations=["fastapi"]) as cap, UvicornThread(app) as srv:
        logging.getLogger("uvicorn.error").addHandler(seen)  # uvicorn's loggers do not propagate to root
        r = httpx.get(f"{srv.url}/boom", timeout=10)
        assert r.status_code == 500

        def served() -> list[Any]:  # the response is sent before the exception leaves our middleware
            cap.flush()
            return [s for s in cap.spans() if s.name.startswith("GET")]

        wait_until(lambda: len(served()) == 1, timeout=10, what="the server span")
        span = served()[0]
        assert span.status.status_code is StatusCode.ERROR
        # Semconv: error.type and exception.type are the fully qualified exception class name.
        qualified = f"{UnprintableError.__module__}.{UnprintableError.__qualname__}"
        assert span.attributes["error.type"] == qualified
        assert [e.attributes["exception.type"] for e in span.events if e.name == "exception"] == [qualified]
    logging.getLogger("uvicorn.error").removeHandler(seen)
    errors = [rec.exc_info[0] for rec in seen.records if rec.exc_info]
    assert errors == [UnprintableError], errors  # the app's exception, not a RuntimeError of ours


def test_log_call_with_bad_format_args_keeps_the_record() -> None:
    """A log call with bad format arguments keeps the record with its template."""
    root = logging.getLogger()
    others = list(root.handlers)  # pytest's capture handler re-raises format errors: not what apps run with
    for h in others:
        root.removeHandler(h)
    try:
        with capture(integrations=["logging"]) as cap:
            logging.getLogger("fmt").warning("%d items", "not-a-number")
            cap.flush()
            bodies = [str(r.log_record.body) for r in cap.logs()]
    finally:
        for h in others:
            root.addHandler(h)
    assert "%d items [unformattable arguments: TypeError]" in bodies, bodies


@pytest.mark.parametrize("fn", ["agent_run", "llm_call"])
def test_model_whose_dunders_raise_never_escapes(fn: str) -> None:
    """A model object whose dunder methods raise never escapes into the caller, and the span is recorded."""
    with capture(integrations=[]) as cap:
        cm: Any = agent_run("run", model=Evil()) if fn == "agent_run" else llm_call(model=Evil(), provider="openai")
        with cm:
            pass
        cap.flush()
        assert cap.spans(), "the span is still recorded"


def test_public_api_bad_input_gets_clear_errors() -> None:
    """Bad input to the public API gets a clear error or a safe no-op, never a half-applied change."""
    with pytest.raises(agentpress_otel.ConfigError, match="integration names must be strings"):
        agentpress_otel.instrument(integrations=[1, "a"])  # type: ignore[list-item]
    for model in (123, b"gpt-5", object(), None):
        assert prices.cost_usd(model, input_tokens=10) is None  # type: ignore[arg-type]
    before = prices.lookup("gpt-5")
    for bad in ({"m": {}}, {"m": {"input": "x", "output": 1}}, {1: {"input": 1, "output": 1}}, {"m": None}):
        with pytest.raises(ValueError, match="set_prices"):
            prices.set_prices(bad)  # type: ignore[arg-type]
    assert prices.lookup("gpt-5") == before and prices.lookup("m") is None  # nothing half-applied
