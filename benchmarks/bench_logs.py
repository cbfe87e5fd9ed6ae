"""Cost of one log call (a message, 3 ``extra`` fields, the context ids), same run, these pipelines:

* baseline: stdlib logging + a minimal orjson JSON formatter on a StreamHandler (to /dev/null);
* the OpenTelemetry SDK's ``LoggingHandler`` + ``BatchLogRecordProcessor`` (null exporter), alone and
  next to that JSON StreamHandler (what a user wanting OTLP *and* container JSON lines would stack);
* ours: ``OTelQueueHandler`` (ids, trace ids, redaction, OTLP LogRecords; null exporter), with and
  without JSON lines. Each of ours is graded against the SDK setup that produces the same outputs.

For each we report wall time per call (includes GIL time lost to background threads while the burst
runs) and the calling thread's own CPU time per call (``time.thread_time``), medians over repeats;
bursts stay below queue capacity, and background work is drained between repeats.

Run: .venv/bin/python benchmarks/bench_logs.py   (writes benchmarks/results/logs.json)
"""

from __future__ import annotations

import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import orjson
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider

from _common import report
from agentpress_otel._config import load_config
from agentpress_otel._context import thread_context
from agentpress_otel.integrations import logging as log_integ
from agentpress_otel.logs import flush
from agentpress_otel.redaction import RedactingLogExporter

BURST = 2000
REPEATS = 11


class NullExporter(LogRecordExporter):
    def __init__(self) -> None:
        self.n = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.n += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class OrjsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(
            {
                "timestamp": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        ).decode()


def measure(log: logging.Logger, drain: Callable[[], None]) -> dict[str, float]:
    walls, cpus, totals = [], [], []
    for _ in range(REPEATS):
        drain()
        p0, w0, c0 = time.process_time(), time.perf_counter(), time.thread_time()
        for i in range(BURST):
            log.info("tool %s finished in %d ms", "web_search", i,
                     extra={"route": "/api/agent/start", "tool": "web_search", "attempt": i % 3})
        cpus.append((time.thread_time() - c0) / BURST)
        walls.append((time.perf_counter() - w0) / BURST)
        drain()
        totals.append((time.process_time() - p0) / BURST)
    return {
        "wall_us": statistics.median(walls) * 1e6,
        "caller_cpu_us": statistics.median(cpus) * 1e6,
        # all threads, until the records were handed to the (null) exporter: the work moved off the caller
        "total_cpu_us": statistics.median(totals) * 1e6,
    }


def fresh_logger(name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
    tp = TracerProvider()
    tracer = tp.get_tracer("bench")
    results: dict[str, Any] = {"burst": BURST, "repeats": REPEATS}

    with thread_context(project_id="p-1", thread_id="t-1"), tracer.start_as_current_span("run"):
        # 1. stdlib + orjson JSON formatter
        log = fresh_logger("bench.stdlib")
        h = logging.StreamHandler(devnull)
        h.setFormatter(OrjsonFormatter())
        log.addHandler(h)
        results["stdlib_json"] = measure(log, lambda: None)

        # 2. OTel SDK LoggingHandler + BLRP
        lp_sdk = LoggerProvider()
        lp_sdk.add_log_record_processor(BatchLogRecordProcessor(NullExporter(), max_queue_size=BURST * 2))
        log = fresh_logger("bench.sdk")
        log.addHandler(LoggingHandler(logger_provider=lp_sdk))
        results["otel_sdk_handler"] = measure(log, lambda: lp_sdk.force_flush())
        # the same plus JSON lines, written synchronously as stdlib handlers do
        h_json = logging.StreamHandler(devnull)
        h_json.setFormatter(OrjsonFormatter())
        log.addHandler(h_json)
        results["otel_sdk_handler_json"] = measure(log, lambda: lp_sdk.force_flush())

        # 3. ours (OTLP only) and ours + JSON stdout (to /dev/null)
        for label, json_on in (("ours_otlp", False), ("ours_otlp_json", True)):
            lp = LoggerProvider()
            lp.add_log_record_processor(
                BatchLogRecordProcessor(RedactingLogExporter(NullExporter()), max_queue_size=BURST * 2)
            )
            cfg = load_config({"log_json": json_on, "max_queue_size": BURST * 4}, env={})
            log_integ.instrument(SimpleNamespace(config=cfg, logger_provider=lp))
            handler = log_integ.handler()
            assert handler is not None
            handler.pipeline._stream = lambda: devnull  # type: ignore[attr-defined]
            logging.getLogger().removeHandler(handler)
            log = fresh_logger(f"bench.{label}")
            log.addHandler(handler)

            def drain(lp: LoggerProvider = lp) -> None:
                flush(10.0)
                lp.force_flush()

            results[label] = measure(log, drain)
            log.removeHandler(handler)
            log_integ.uninstrument()
            lp.shutdown()
        lp_sdk.shutdown()

    base = results["stdlib_json"]
    sdk = results["otel_sdk_handler"]
    print(
        f"{'pipeline':21} {'wall us/call':>13} {'caller CPU us':>14} {'x stdlib':>9} {'x SDK handler':>14}"
        f" {'total CPU us':>13}"
    )
    for k in ("stdlib_json", "otel_sdk_handler", "otel_sdk_handler_json", "ours_otlp", "ours_otlp_json"):
        r = results[k]
        r["wall_vs_stdlib"] = r["wall_us"] / base["wall_us"]
        r["wall_vs_sdk"] = r["wall_us"] / sdk["wall_us"]
        r["cpu_vs_stdlib"] = r["caller_cpu_us"] / base["caller_cpu_us"]
        r["cpu_vs_sdk"] = r["caller_cpu_us"] / sdk["caller_cpu_us"]
        print(
            f"{k:21} {r['wall_us']:13.1f} {r['caller_cpu_us']:14.1f} {r['cpu_vs_stdlib']:9.2f} {r['cpu_vs_sdk']:14.2f}"
            f" {r['total_cpu_us']:13.1f}"
        )
    print("(ratios above on caller CPU time)")
    rows: list[dict[str, Any]] = []
    for key, sdk_key, sdk_name in (("ours_otlp", "otel_sdk_handler", "SDK LoggingHandler"),
                                   ("ours_otlp_json", "otel_sdk_handler_json", "SDK handler + JSON handler")):
        ours, sdk = results[key], results[sdk_key]
        # Graded: total process CPU per record (all threads, until handed to the exporter). Under the GIL
        # our worker thread's CPU is the app's CPU too: moving work off the caller must not make it dearer.
        rows.append({"name": f"log call {key}: total CPU (all threads) vs {sdk_name}",
                     "value": ours["total_cpu_us"], "unit": "us", "baseline": sdk["total_cpu_us"],
                     "ratio": ours["total_cpu_us"] / sdk["total_cpu_us"], "goal": "<= 1.0x"})
        # Second column: what the calling thread (a request handler) pays itself.
        rows.append({"name": f"log call {key}: caller CPU vs {sdk_name}", "value": ours["caller_cpu_us"],
                     "unit": "us", "baseline": sdk["caller_cpu_us"],
                     "ratio": ours["caller_cpu_us"] / sdk["caller_cpu_us"], "goal": "< 1x"})
        # Wall time of a 2,000-record burst also carries the GIL time our worker thread takes meanwhile
        # (thread scheduling makes it swing by 2x between runs): reported, not graded.
        rows.append({"name": f"log call {key}: caller wall (burst) vs {sdk_name}", "value": ours["wall_us"],
                     "unit": "us", "baseline": sdk["wall_us"], "ratio": ours["wall_us"] / sdk["wall_us"],
                     "goal": ""})
        rows.append({"name": f"log call {key}: caller wall vs stdlib JSON formatter", "value": ours["wall_us"],
                     "unit": "us", "baseline": base["wall_us"], "ratio": ours["wall_vs_stdlib"], "goal": ""})
    report("logs", rows, details=results)


if __name__ == "__main__":
    main()
