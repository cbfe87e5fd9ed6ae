"""Nothing recorded before a stop is lost: real servers receive SIGTERM right after their last request.

Each server runs our instrumented app in its own process(es) and exports to a real OTLP receiver over
gRPC or http/protobuf. SIGTERM goes to the main process only, as Kubernetes sends it on every rollout.
What the app recorded before the signal is known from outside telemetry (HTTP 200 responses, or a
Redis list each Dramatiq job appends to), and every span, log record and metric increment of it must
arrive; the process must exit in time with the status the server gives without us.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentpress_otel._harness._proc import ComponentMissing, ManagedProcess, free_port, http_ok, wait_until
from conftest import need  # type: ignore[import-not-found]  # tests/ is on sys.path under pytest
from harness.otlp_sink import OTLPSink, attrs_to_dict

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
REQUESTS = 100
#: The app's Telemetry deadline for a stop; the process must be gone well within the server's own grace.
SHUTDOWN_S = 5.0
PROTOCOLS = ("grpc", "http/protobuf")


def _env(target: OTLPSink | str, protocol: str) -> dict[str, str]:
    """The app's environment; ``target`` is our sink or a Collector endpoint."""
    endpoint = target if isinstance(target, str) else (
        target.grpc_endpoint if protocol == "grpc" else target.http_endpoint)
    return {
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        # Long intervals: without a flush at the stop, the tail would still be sitting in the queues.
        "AGENTPRESS_OTEL_METRIC_INTERVAL_S": "60",
        "OTEL_BSP_SCHEDULE_DELAY": "30000",
        "OTEL_BLRP_SCHEDULE_DELAY": "30000",
        "AGENTPRESS_OTEL_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
        "AGENTPRESS_OTEL_LOG_JSON": "false",
        "PYTHONPATH": str(HERE),
    }


def _received(sink: OTLPSink, span_name: str, log_prefix: str, metric: str) -> tuple[list[int], list[int], int]:
    """(work.i of every ``span_name`` span, i of every log record, final metric total over processes)."""
    spans = [int(attrs_to_dict(s.attributes)["work.i"]) for s in sink.spans() if s.name == span_name]
    logs = [int(lr.body.string_value.rsplit(" ", 1)[1]) for lr in sink.log_records()
            if lr.body.string_value.startswith(log_prefix)]
    totals: dict[str, int] = {}  # cumulative counter: the last (largest) value per process
    with sink.lock:
        for r in sink.received.metrics:
            for rm in r.resource_metrics:
                inst = str(attrs_to_dict(rm.resource.attributes).get("service.instance.id"))
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == metric:
                            totals[inst] = max(totals.get(inst, 0), sum(int(p.as_int) for p in m.sum.data_points))
    return sorted(spans), sorted(logs), sum(totals.values())


def _stop(proc: ManagedProcess) -> tuple[int, float]:
    """SIGTERM to the main process only; (exit status, seconds to exit)."""
    assert proc.proc is not None
    t0 = time.monotonic()
    os.kill(proc.proc.pid, signal.SIGTERM)
    rc = proc.proc.wait(timeout=SHUTDOWN_S * 4)
    return rc, time.monotonic() - t0


def _gunicorn() -> str:
    path = Path(sys.executable).parent / "gunicorn"
    if not path.exists():
        raise ComponentMissing("gunicorn not installed in .venv")
    return str(path)


def _server_argv(server: str, port: int) -> list[str]:
    if server == "uvicorn.run":
        return [sys.executable, str(HERE / "_stop_app.py"), str(port)]
    argv = [need(_gunicorn), "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{port}",
            "--chdir", str(HERE), "--graceful-timeout", "10", "_stop_app:app"]
    return [*argv, "--preload"] if server == "gunicorn --preload" else argv


#: Exit status each server gives on SIGTERM without any telemetry: uvicorn.run re-raises the signal after
#: its graceful shutdown (killed by SIGTERM); gunicorn's master stops its workers and exits 0.
EXPECTED_STATUS = {"uvicorn.run": -signal.SIGTERM, "gunicorn": 0, "gunicorn --preload": 0}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("server", list(EXPECTED_STATUS))
def test_http_server_sigterm_after_last_request_loses_nothing(server: str, protocol: str) -> None:
    """SIGTERM right after the last request loses no span or log, duplicates none, and exits in time."""
    with OTLPSink() as sink:
        port = free_port()
        proc = ManagedProcess(f"stop-{server.replace(' ', '')}", _server_argv(server, port), env=_env(sink, protocol),
                              cwd=HERE)
        with proc:
            proc.start(ready=lambda: http_ok(f"http://127.0.0.1:{port}/docs"), timeout=60)
            with httpx.Client(timeout=10) as client:
                for i in range(REQUESTS):
                    r = client.get(f"http://127.0.0.1:{port}/work/{i}", headers={"Connection": "close"})
                    assert r.status_code == 200, r.text
            time.sleep(0.05)
            rc, took = _stop(proc)
            log = proc.log_tail()
        want = list(range(REQUESTS))
        try:  # exports finished before the process exited; allow the receiver a moment to store them
            wait_until(lambda: _received(sink, "work.inner", "work done", "stop_app.work") == (want, want, REQUESTS),
                       timeout=5, what="every span, log record and metric increment")
        except TimeoutError:
            spans, logs, total = _received(sink, "work.inner", "work done", "stop_app.work")
            pytest.fail(f"{server}/{protocol}: spans {len(set(spans))}/{REQUESTS}, logs {len(set(logs))}/{REQUESTS}, "
                        f"metric {total}/{REQUESTS} after SIGTERM (exit {rc} in {took:.2f}s); log:\n{log}")
        spans, logs, _ = _received(sink, "work.inner", "work done", "stop_app.work")
        assert spans == want and logs == want, "duplicates"  # each exactly once
        assert rc == EXPECTED_STATUS[server], f"exit status {rc}; log:\n{log}"
        assert took < SHUTDOWN_S * 2, f"took {took:.2f}s to exit"
        assert "Traceback" not in log, log


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dramatiq_worker_sigterm_mid_task_loses_nothing(redis_url: str, protocol: str) -> None:
    """``dramatiq --processes 2``: worker processes leave through multiprocessing's ``os._exit`` (no atexit)."""
    dramatiq_bin = Path(sys.executable).parent / "dramatiq"
    if not dramatiq_bin.exists():
        need(lambda: (_ for _ in ()).throw(ComponentMissing("dramatiq CLI not installed in .venv")))
    import redis
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    rds: Any = redis.Redis.from_url(redis_url)
    with OTLPSink() as sink:
        proc = ManagedProcess(
            "stop-dramatiq",
            [str(dramatiq_bin), "_stop_dramatiq", "--processes", "2", "--threads", "2", "--queues", "stop-test"],
            env={**_env(sink, protocol), "STOP_REDIS_URL": redis_url, "STOP_JOB_SLEEP_S": "0.3"}, cwd=HERE,
        )
        broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
        try:
            with proc:
                proc.start(timeout=30)
                for i in range(60):
                    broker.enqueue(Message(queue_name="stop-test", actor_name="job", args=(i,), kwargs={},
                                           options={}))
                # Some jobs done, others running (0.3 s each on 4 threads): the signal lands mid-task.
                wait_until(lambda: int(rds.llen("stop-started")) >= 12, timeout=60, what="jobs under way")
                running_at_signal = int(rds.llen("stop-started")) - int(rds.llen("stop-done"))
                rc, took = _stop(proc)
                log = proc.log_tail()
        finally:
            broker.close()
        done = sorted(int(x) for x in rds.lrange("stop-done", 0, -1))
        started = {int(x) for x in rds.lrange("stop-started", 0, -1)}
        assert running_at_signal > 0 and len(done) < 60, "the signal must land while jobs run"
        assert set(done) == started, "Dramatiq finishes the jobs it started before a worker stops"
        try:
            wait_until(lambda: _received(sink, "job.inner", "job done", "stop_worker.jobs") == (done, done, len(done)),
                       timeout=5, what="every span, log record and metric increment")
        except TimeoutError:
            spans, logs, total = _received(sink, "job.inner", "job done", "stop_worker.jobs")
            pytest.fail(f"dramatiq/{protocol}: {len(done)} jobs done; spans {len(spans)}, logs {len(logs)}, metric "
                        f"{total} after SIGTERM (exit {rc} in {took:.2f}s); log:\n{log}")
        # dramatiq's main process exits RET_OK (0) once its worker processes stopped after a SIGTERM.
        assert rc == 0, f"exit status {rc}; log:\n{log}"
        assert took < SHUTDOWN_S * 2, f"took {took:.2f}s to exit"


_PLAIN = """
import signal, sys, time
from opentelemetry import metrics, trace
if sys.argv[1] == "own-handler":  # the app's own handler, installed before instrument(): must still run
    def on_term(signum, frame):
        print("app handler ran", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, on_term)
import agentpress_otel
agentpress_otel.instrument(service_name="stop-plain", integrations=[], logs=False)
with trace.get_tracer("stop-plain").start_as_current_span("work.inner") as span:
    span.set_attribute("work.i", 0)
metrics.get_meter("stop-plain").create_counter("stop_plain.work").add(1)
print("ready", flush=True)
while True:
    time.sleep(0.01)
"""


@pytest.mark.parametrize(("mode", "status"), [("default", -signal.SIGTERM), ("own-handler", 3)])
def test_plain_process_sigterm_flushes_then_chains(mode: str, status: int, tmp_path: Path) -> None:
    """No server at all: SIGTERM's default action (no atexit) or the app's own handler, after our flush."""
    script = tmp_path / "plain.py"
    script.write_text(_PLAIN)
    with OTLPSink() as sink:
        proc = ManagedProcess("stop-plain", [sys.executable, str(script), mode], env=_env(sink, "http/protobuf"))
        with proc:
            proc.start(ready=lambda: "ready" in proc.log_tail(), timeout=30)
            rc, took = _stop(proc)
            log = proc.log_tail()
        wait_until(lambda: _received(sink, "work.inner", "-", "stop_plain.work")[::2] == ([0], 1), timeout=5,
                   what=f"the span and the metric increment ({mode}); log:\n{log}")
        assert rc == status, f"exit status {rc}; log:\n{log}"
        assert ("app handler ran" in log) == (mode == "own-handler"), log
        assert took < SHUTDOWN_S * 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gunicorn_preload_sigterm_through_the_real_collector(protocol: str) -> None:
    """The same stop through the shipped Collector: every span at Tempo, every log at Loki (stand-ins) and the
    counter's full total in Prometheus."""
    from harness.pipeline import local_pipeline

    env = {"OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100", "OTELCOL_TAIL_DECISION_WAIT": "1s"}
    with need(lambda: local_pipeline(env=env)) as p:
        col = p.collector
        endpoint = col.otlp_grpc_endpoint if protocol == "grpc" else col.otlp_http_endpoint
        port = free_port()
        proc = ManagedProcess("stop-collector", _server_argv("gunicorn --preload", port), env=_env(endpoint, protocol),
                              cwd=HERE)
        with proc:
            proc.start(ready=lambda: http_ok(f"http://127.0.0.1:{port}/docs"), timeout=60)
            with httpx.Client(timeout=10) as client:
                for i in range(REQUESTS):
                    assert client.get(f"http://127.0.0.1:{port}/work/{i}", headers={"Connection": "close"}).is_success
            time.sleep(0.05)
            rc, _ = _stop(proc)
            log = proc.log_tail()
        assert rc == 0, log
        want = list(range(REQUESTS))

        def spans() -> list[int]:
            return sorted(int(s.attributes["work.i"]) for s in p.tempo.spans() if s.name == "work.inner")

        def logs() -> list[int]:
            return sorted(int(str(r.body).rsplit(" ", 1)[1]) for r in p.loki.logs()
                          if str(r.body).startswith("work done"))

        wait_until(lambda: spans() == want, timeout=60, what=f"100 spans at Tempo (have {len(spans())})")
        wait_until(lambda: logs() == want, timeout=60, what=f"100 logs at Loki (have {len(logs())})")
        wait_until(lambda: p.prometheus.query_value('sum(max_over_time(stop_app_work_total[5m]))') == REQUESTS,
                   timeout=60, what="the counter total (100) in Prometheus")
