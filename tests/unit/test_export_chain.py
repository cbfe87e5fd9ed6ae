"""One export chain for every signal (issue 20): built once in ``_providers``, wrapped by one counting exporter,
one drop-counting processor and one redaction base, printed by console exporters sharing one writer."""

from __future__ import annotations

import inspect
import io
import re
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentpress_otel import _export, _providers, _selftel, redaction
from agentpress_otel._config import load_config
from agentpress_otel._console import ConsoleLogExporter, ConsoleSpanExporter
from agentpress_otel._context import ID_ATTRIBUTES, thread_context

#: A key of the shape the redactor's OpenAI detector knows, built at run time (no key-shaped literal in the repo).
_SECRET = "sk-" + "proj-" + "A1b2C3d4" * 5


class _Failing(SpanExporter, LogRecordExporter):
    """An exporter outside the package whose flush and shutdown fail (a dead gRPC channel, say)."""

    def export(self, batch: Sequence[Any]) -> Any:
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        raise RuntimeError("channel closed")

    def shutdown(self) -> None:
        raise RuntimeError("channel closed")


@pytest.mark.parametrize(("cls", "signal"), [(_export.CountingSpanExporter, "spans"),
                                             (_export.CountingLogExporter, "logs")])
def test_counting_exporter_flush_and_shutdown_never_raise(cls: Any, signal: str) -> None:
    """A failing flush or shutdown of the wrapped exporter is counted under ``export.<signal>``, never raised."""
    exporter = cls(_Failing)
    assert exporter.force_flush(1000) is False
    exporter.shutdown()
    assert _selftel.errors(f"export.{signal}") == 2


def test_redacting_exporter_flush_and_shutdown_never_raise() -> None:
    """The redaction wrappers hand flush and shutdown on through the same guard (``exporter.<signal>``)."""
    for cls, signal in ((redaction.RedactingSpanExporter, "spans"), (redaction.RedactingLogExporter, "logs")):
        wrapper: Any = cls(_Failing())
        assert wrapper.force_flush(1000) is False
        wrapper.shutdown()
        assert _selftel.errors(f"exporter.{signal}") == 2


@pytest.mark.parametrize(("signal", "processor", "redacting", "counting", "console"), [
    ("spans", _export.DropCountingSpanProcessor, redaction.RedactingSpanExporter, _export.CountingSpanExporter,
     ConsoleSpanExporter),
    ("logs", _export.DropCountingLogProcessor, redaction.RedactingLogExporter, _export.CountingLogExporter,
     ConsoleLogExporter),
])
def test_one_chain_builder_for_spans_and_logs(signal: str, processor: type, redacting: type, counting: type,
                                              console: type) -> None:
    """Spans and logs get the same chain: drop-counting batch processor, redaction, counting exporter, exporter."""
    cfg = load_config({"redact": True, "max_queue_size": 64}, env={})
    proc = _providers.export_processor(cfg, signal, "console")
    try:
        assert type(proc) is processor
        exporter = proc._batch_processor._exporter
        assert type(exporter) is redacting
        assert type(exporter.inner) is counting
        assert type(exporter.inner.inner) is console
        # The queue is the counting one, sized as configured; only logs are bounded in bytes too.
        queue = proc._batch_processor._queue
        assert isinstance(queue, _export._CountingDeque) and queue.maxlen == 64
        assert (queue._size is not None) is (signal == "logs")
    finally:
        proc.shutdown()


def test_span_through_the_chain_is_redacted_and_cut_on_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    """A span exported through the real chain to the console shows the secret redacted and long values cut
    with the one truncation marker of ``_text``."""
    cfg = load_config({"redact": True}, env={})
    proc = _providers.export_processor(cfg, "spans", "console")
    tp = TracerProvider()
    tp.add_span_processor(proc)
    with tp.get_tracer("t").start_as_current_span("chain") as span:
        span.set_attribute("prompt", f"my key is {_SECRET}")
        span.set_attribute("long", "y" * 500)
    assert tp.force_flush(5000)
    tp.shutdown()
    line = next(ln for ln in capsys.readouterr().out.splitlines() if " span   chain " in ln)
    assert _SECRET not in line and "[REDACTED:openai_key:" in line
    cut = re.search(r"long=((y+)…\[(\d+) chars cut\]…)", line)
    assert cut is not None, line
    assert len(cut[1]) <= 120 and len(cut[2]) + int(cut[3]) == 500  # kept + cut = the whole value


def test_console_log_line_body_and_values_use_the_text_toolkit() -> None:
    """A log body in bytes is decoded (not ``b'...'``) and its newlines escaped, like any other value."""
    out = io.StringIO()
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(ConsoleLogExporter(out)))
    lp.get_logger("t").emit(body=b"first\nsecond", severity_text="INFO")
    lp.shutdown()
    assert "INFO   first\\nsecond" in out.getvalue()


def test_thread_context_keywords_are_the_id_list() -> None:
    """``thread_context`` takes exactly the fields of ``ID_ATTRIBUTES``, in its order (values are zipped)."""
    assert list(inspect.signature(thread_context).parameters) == list(ID_ATTRIBUTES)
    with thread_context(**dict.fromkeys(ID_ATTRIBUTES, "v")) as ids:
        assert ids == dict.fromkeys(ID_ATTRIBUTES, "v")
