"""Issue 21 pieces on their own: service identity by role, logging that changes nothing the app prints, access
logs redacted as printed, the AgentPress layouts, structlog ids mirrored."""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentpress_otel
from agentpress_otel._config import load_config
from agentpress_otel.integrations import agentpress as ap_integ
from agentpress_otel.integrations import logging as log_integ

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJyb2xlIjoiYXV0aGVudGljYXRlZCJ9"
       ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1oZXJl")


def _instrument(app: Any = None, **kw: Any) -> tuple[agentpress_otel.Telemetry, InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    kw.setdefault("integrations", ["fastapi"] if app is not None else [])
    tel = agentpress_otel.instrument(app, export_otlp=False, metrics=False, logs=False,
                                     additional_span_processors=[SimpleSpanProcessor(exp)], **kw)
    return tel, exp


# ------------------------------------------------------------------------------------------ identity

def test_app_call_after_worker_module_names_the_process() -> None:
    """A later instrument() call with the FastAPI app renames the process from the worker name to the API's."""
    from fastapi import FastAPI

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the documented order must not warn
        tel, exp = _instrument(service_name="agentpress-worker")  # the worker module, imported by api.py
        from opentelemetry import trace

        tracer = trace.get_tracer("lib")  # a tracer a library took before the app's call
        again = agentpress_otel.instrument(FastAPI(), service_name="agentpress-api")
    assert again is tel and tel.config.service_name == "agentpress-api"
    tracer.start_span("after").end()
    (span,) = exp.get_finished_spans()
    assert span.resource.attributes["service.name"] == "agentpress-api"


def test_worker_boot_takes_the_worker_name_back() -> None:
    """Booting as a Dramatiq worker gives the process the worker's service name back on its spans."""
    from fastapi import FastAPI

    tel, exp = _instrument(service_name="agentpress-worker", integrations=["dramatiq"])
    agentpress_otel.instrument(FastAPI(), service_name="agentpress-api")
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    broker = StubBroker()
    dramatiq.set_broker(broker)
    broker.emit_after("process_boot")  # what `dramatiq` does in each worker process
    assert tel.config.service_name == "agentpress-worker"
    from opentelemetry import trace

    trace.get_tracer("x").start_span("w").end()
    assert exp.get_finished_spans()[-1].resource.attributes["service.name"] == "agentpress-worker"


def test_a_second_app_name_or_other_options_are_never_silently_ignored() -> None:
    """A second instrument() with a different app name or other options warns instead of being silently ignored."""
    from fastapi import FastAPI

    tel, _ = _instrument(FastAPI(), service_name="api-one")
    with pytest.warns(RuntimeWarning, match="does not rename"):
        agentpress_otel.instrument(FastAPI(), service_name="api-two")
    with pytest.warns(RuntimeWarning, match="sample_ratio"):
        agentpress_otel.instrument(sample_ratio=0.5)
    assert tel.config.service_name == "api-one"


def test_two_names_without_an_app_warn() -> None:
    """Two different service names without an app warn, and the first name stays in effect."""
    tel, _ = _instrument(service_name="worker-a")
    with pytest.warns(RuntimeWarning, match="applies only if it boots as a Dramatiq worker"):
        agentpress_otel.instrument(service_name="worker-b")
    assert tel.config.service_name == "worker-a"


# ------------------------------------------------------------------------------------------- logging

@pytest.fixture
def logging_on() -> Iterator[Any]:
    """The logging integration on a pipeline we own (the autouse reset restores the root logger)."""
    made: list[Any] = []

    def start(**cfg_kw: Any) -> Any:
        from agentpress_otel._config import load_config

        cfg = load_config({"logs": True, **cfg_kw}, env={})
        tel = SimpleNamespace(config=cfg, logger_provider=object())
        log_integ.instrument(tel)  # raises Skip when it does not apply
        made.append(tel)
        h = log_integ.handler()
        assert h is not None
        got: list[logging.LogRecord] = []
        h.pipeline.submit = lambda item, size=0: got.append(item[1]) or True  # type: ignore[method-assign]
        return got

    yield start
    log_integ.uninstrument()


def test_root_level_and_app_handlers_print_what_they_printed(logging_on: Any) -> None:
    """The logging integration leaves the root level and the app's handlers printing what they printed before."""
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    app_out = io.StringIO()
    lib = logging.getLogger("thirdparty.lib")
    lib.addHandler(logging.StreamHandler(app_out))  # LiteLLM-style: its own handler, level NOTSET
    lib.setLevel(logging.NOTSET)
    got = logging_on(logger_levels={"thirdparty": "DEBUG"})
    assert root.level == logging.WARNING  # untouched
    lib.debug("debug for export only")
    lib.info("info for export only")
    lib.warning("a warning the app printed before")
    assert app_out.getvalue() == "a warning the app printed before\n"
    assert [r.getMessage() for r in got] == ["debug for export only", "info for export only",
                                            "a warning the app printed before"]


def test_last_resort_still_prints_warnings_without_handlers(logging_on: Any, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    """With no root handlers, warnings still reach stderr (Python's last resort) and are exported too."""
    logging.getLogger().handlers[:] = []
    got = logging_on()
    logging.getLogger("agentpress.run").warning("Task exception was never retrieved")
    assert "Task exception was never retrieved" in capsys.readouterr().err
    assert [r.getMessage() for r in got] == ["Task exception was never retrieved"]


def test_gunicorn_access_log_prints_the_sse_token_redacted(logging_on: Any) -> None:
    """gunicorn's access line prints the SSE ``token`` query parameter as a redaction tag, never the JWT."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("accesslog", "-")
    glog = Logger(cfg)
    out = io.StringIO()
    for h in glog.access_log.handlers:
        h.setStream(out)  # type: ignore[attr-defined]
    logging_on()
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/api/agent-run/r-1/stream?token={JWT}",
               "PATH_INFO": "/api/agent-run/r-1/stream", "QUERY_STRING": f"token={JWT}",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    resp = SimpleNamespace(status="200 OK", headers=[], sent=10)
    glog.access(resp, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    line = out.getvalue()
    assert "/api/agent-run/r-1/stream?token=[REDACTED:jwt:" in line and JWT not in line


def test_uvicorn_access_log_prints_the_sse_token_redacted(logging_on: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's access line prints the SSE ``token`` query parameter as a redaction tag, never the JWT."""
    from uvicorn.logging import AccessFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    access = logging.getLogger("uvicorn.access")
    # Importing litellm (any earlier test may have) adds its own filter here, which blanks the whole query
    # before ours runs: start from no filters, so this checks our filter whatever ran before.
    monkeypatch.setattr(access, "filters", [])
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    try:
        logging_on()
        # uvicorn's own call shape (protocols/http/*_impl.py)
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/api/agent-run/r-1/stream?token={JWT}",
                    "1.1", 200)
    finally:
        access.removeHandler(handler)
        access.propagate = True
    assert "stream?token=[REDACTED:jwt:" in out.getvalue() and JWT not in out.getvalue()


def test_structlog_debug_is_exported_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """AgentPress's structlog lines below the print level are exported over OTLP but not printed."""
    import structlog

    from agentpress_otel.integrations import structlog as sl_integ

    out = io.StringIO()
    structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
                        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
                        logger_factory=structlog.PrintLoggerFactory(out), cache_logger_on_first_use=False)
    exported: list[str] = []
    from agentpress_otel._config import load_config

    cfg = load_config({"logger_levels": {"structlog": "DEBUG"}}, env={})
    tel = SimpleNamespace(config=cfg, logger_provider=object())
    try:
        sl_integ.instrument(tel)  # raises Skip when it does not apply
        pipeline = sl_integ.get_pipeline()
        assert pipeline is not None
        monkeypatch.setattr(pipeline, "submit", lambda item, size=0: exported.append(item[4]["event"]) or True)
        log = structlog.get_logger()
        log.debug("Executing tool: web_search")
        log.info("Agent run completed")
    finally:
        sl_integ.uninstrument()
    assert exported == ["Executing tool: web_search", "Agent run completed"]
    assert "Executing tool" not in out.getvalue() and "Agent run completed" in out.getvalue()


# ---------------------------------------------------------------------------------------- agentpress

def test_layouts_default_and_override() -> None:
    """The AgentPress module layouts default to the known ones and can be overridden by the environment variable;
    a malformed value is reported by the config (with the variable's name) and the known layouts stay in use."""
    var = "AGENTPRESS_OTEL_AGENTPRESS_MODULES"
    assert ap_integ.layouts({}) == ap_integ.LAYOUTS
    assert ap_integ.LAYOUTS[0] == ("agentpress.thread_manager", "agentpress.response_processor")
    assert ap_integ.layouts({var: "a.tm,a.rp;b.tm,b.rp"}) == (("a.tm", "a.rp"), ("b.tm", "b.rp"))
    assert ap_integ.layouts({var: "only_one"}) == ap_integ.LAYOUTS
    cfg = load_config({}, env={var: "only_one"})
    assert cfg.agentpress_modules == ()
    assert any(var in w and "pairs" in w for w in cfg.config_warnings), cfg.config_warnings
    assert load_config({}, env={var: "a.tm,a.rp"}).sources["agentpress_modules"] == var


def test_core_layout_is_hooked_lazily_and_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Era B (``core.agentpress.*``): found without importing it, hooked when the app imports it."""
    pkg = tmp_path / "core" / "agentpress"
    pkg.mkdir(parents=True)
    (tmp_path / "core" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "thread_manager.py").write_text(
        "class ThreadManager:\n    async def run_thread(self, thread_id, system_prompt, llm_model='m'):\n"
        "        return {'ok': thread_id}\n")
    (pkg / "response_processor.py").write_text(
        "class ResponseProcessor:\n    async def _execute_tool(self, tool_call):\n        return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tel, exp = _instrument(integrations=["agentpress"])
    assert "agentpress" in tel.integrations and "core" not in sys.modules  # nothing imported by us
    import asyncio

    from core.agentpress.response_processor import ResponseProcessor  # type: ignore[import-not-found]
    from core.agentpress.thread_manager import ThreadManager  # type: ignore[import-not-found]

    async def run() -> None:
        assert await ThreadManager().run_thread("t-9", {}, llm_model="openai/gpt-5") == {"ok": "t-9"}
        await ResponseProcessor()._execute_tool({"function_name": "sb_shell", "id": "call_1", "arguments": {}})

    asyncio.run(run())
    names = {s.name: s for s in exp.get_finished_spans()}
    assert names["invoke_agent agentpress"].attributes["gen_ai.conversation.id"] == "t-9"
    assert names["execute_tool sb_shell"].attributes["gen_ai.tool.call.id"] == "call_1"
    tel.shutdown(1)
    assert not hasattr(ThreadManager.__dict__["run_thread"], "__wrapped__")
    for name in [m for m in sys.modules if m == "core" or m.startswith("core.")]:
        monkeypatch.delitem(sys.modules, name)


def test_hostile_arguments_never_stop_agentpress_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An argument our wrapper cannot read (``__str__`` raises, a tool call whose ``get`` raises) costs the span,
    never AgentPress's own call: the wrapped method runs and returns as without us, and the error is counted."""
    pkg = tmp_path / "agentpress"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "thread_manager.py").write_text(
        "class ThreadManager:\n    async def run_thread(self, thread_id, system_prompt, llm_model='m'):\n"
        "        return 'ran'\n")
    (pkg / "response_processor.py").write_text(
        "class ResponseProcessor:\n    async def _execute_tool(self, tool_call):\n        return 'tool ran'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tel, _exp = _instrument(integrations=["agentpress"])
    import asyncio

    from agentpress_otel import _selftel

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    class BadCall(dict[str, Any]):
        def get(self, *_a: Any, **_k: Any) -> Any:
            raise RuntimeError("no get")

    from agentpress.response_processor import ResponseProcessor  # type: ignore[import-not-found]
    from agentpress.thread_manager import ThreadManager  # type: ignore[import-not-found]

    before = _selftel.errors("agentpress")

    async def run() -> tuple[Any, Any]:
        return (await ThreadManager().run_thread(Unprintable(), {}, llm_model="x"),
                await ResponseProcessor()._execute_tool(BadCall()))

    assert asyncio.run(run()) == ("ran", "tool ran")
    assert _selftel.errors("agentpress") == before + 2
    tel.shutdown(1)
    for name in [m for m in sys.modules if m == "agentpress" or m.startswith("agentpress.")]:
        if not name.startswith("agentpress_otel"):
            monkeypatch.delitem(sys.modules, name)
