"""Fork safety: gunicorn ``--preload`` + Uvicorn workers, and Dramatiq with several processes.

Every process must export its own spans and metrics to a real OTLP receiver, each with its own
``service.instance.id``, and metrics must keep flowing after the fork (the SDK's periodic reader and
batch processors are re-created in the child; the resource must be too). OTLP/HTTP is used, as
recommended for forking servers (gRPC channels do not survive fork).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentpress_otel._harness._proc import ComponentMissing, ManagedProcess, free_port, http_ok, wait_until
from conftest import need  # type: ignore[import-not-found]  # tests/ is on sys.path under pytest
from harness.otlp_sink import OTLPSink, attrs_to_dict

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
WORKERS = 3
ENV = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "AGENTPRESS_OTEL_METRIC_INTERVAL_S": "0.5",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "PYTHONPATH": str(HERE),
}


def _instances_with(sink: OTLPSink, *, service: str, metric: str | None = None) -> dict[str, dict[str, Any]]:
    """service.instance.id -> resource, for resources that sent spans (or the named metric)."""
    out: dict[str, dict[str, Any]] = {}
    with sink.lock:
        if metric is None:
            groups = [rs for r in sink.received.traces for rs in r.resource_spans if rs.scope_spans]
        else:
            groups = [rm for r in sink.received.metrics for rm in r.resource_metrics
                      if any(m.name == metric for sm in rm.scope_metrics for m in sm.metrics)]
        for g in groups:
            res = attrs_to_dict(g.resource.attributes)
            if res.get("service.name") == service:
                out[str(res.get("service.instance.id"))] = res
    return out


def _metric_points_by_instance(sink: OTLPSink, metric: str) -> dict[str, int]:
    """How many export requests carried ``metric`` per instance (grows while metrics keep flowing)."""
    counts: dict[str, int] = defaultdict(int)
    with sink.lock:
        for r in sink.received.metrics:
            for rm in r.resource_metrics:
                if any(m.name == metric for sm in rm.scope_metrics for m in sm.metrics):
                    counts[str(attrs_to_dict(rm.resource.attributes).get("service.instance.id"))] += 1
    return dict(counts)


def _gunicorn() -> str:
    path = Path(sys.executable).parent / "gunicorn"
    if path.exists():
        return str(path)
    found = shutil.which("gunicorn")
    if found is None:
        raise ComponentMissing("gunicorn not installed in .venv")
    return found


def test_gunicorn_preload_workers_each_export_with_own_identity() -> None:
    """gunicorn --preload workers each export their spans with their own instance id and pid."""
    gunicorn = need(_gunicorn)
    with OTLPSink() as sink:
        port = free_port()
        proc = ManagedProcess(
            "gunicorn-fork",
            [gunicorn, "--preload", "-w", str(WORKERS), "-k", "uvicorn.workers.UvicornWorker", "-b",
             f"127.0.0.1:{port}", "--chdir", str(HERE), "--graceful-timeout", "3", "_fork_app:app"],
            env={**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint},
        )
        url = f"http://127.0.0.1:{port}/api/thread/t-1/who"
        with proc:
            proc.start(ready=lambda: http_ok(url), timeout=60)
            seen: dict[int, dict[str, Any]] = {}
            deadline = time.monotonic() + 30
            while len(seen) < WORKERS and time.monotonic() < deadline:
                # A new connection per request so the kernel spreads them over the workers.
                r = httpx.get(url, headers={"Connection": "close"}, timeout=5)
                body = r.json()
                seen[body["pid"]] = body
            assert len(seen) == WORKERS, f"requests reached only {sorted(seen)}; log:\n{proc.log_tail()}"
            master = next(iter(seen.values()))["master_pid"]
            assert master not in seen, "requests must be served by forked workers, not the preloading master"
            handle_ids = {b["instance"] for b in seen.values()}
            assert len(handle_ids) == WORKERS, f"Telemetry.resource not updated after fork: {seen}"

            wait_until(lambda: len(_instances_with(sink, service="fork-app")) >= WORKERS, timeout=20,
                       what="spans from every worker")
            span_instances = _instances_with(sink, service="fork-app")
            assert handle_ids <= set(span_instances), (handle_ids, sorted(span_instances))
            assert {int(r["process.pid"]) for r in span_instances.values()} >= set(seen)

            # Metrics after fork: every worker's counter arrives under its own instance id, and keeps arriving.
            def metric_ids() -> set[str]:
                return set(_instances_with(sink, service="fork-app", metric="fork_app.requests"))

            try:
                wait_until(lambda: handle_ids <= metric_ids(), timeout=20, what="metrics from every worker")
            except TimeoutError:
                pytest.fail(f"metrics after fork came only from instances {sorted(metric_ids())}; the workers are "
                            f"{sorted(handle_ids)} (the master's id would mean the MeterProvider resource was not "
                            "updated in the child)")
            before = _metric_points_by_instance(sink, "fork_app.requests")
            time.sleep(2.0)
            after = _metric_points_by_instance(sink, "fork_app.requests")
            for inst in handle_ids:
                assert after.get(inst, 0) > before.get(inst, 0), f"metrics stopped flowing for {inst}: {after}"


def test_dramatiq_processes_each_export_with_own_identity(redis_url: str) -> None:
    """``dramatiq --processes 2`` on a RedisBroker (StubBroker is single-process, so a real redis-server)."""
    dramatiq_bin = Path(sys.executable).parent / "dramatiq"
    if not dramatiq_bin.exists():
        need(lambda: (_ for _ in ()).throw(ComponentMissing("dramatiq CLI not installed in .venv")))
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    with OTLPSink() as sink:
        proc = ManagedProcess(
            "dramatiq-fork",
            [str(dramatiq_bin), "_fork_dramatiq", "--processes", "2", "--threads", "1", "--queues", "fork-test"],
            env={**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint, "FORK_REDIS_URL": redis_url},
            cwd=HERE,
        )
        broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
        try:
            with proc:
                proc.start(timeout=30)
                for i in range(40):
                    broker.enqueue(Message(queue_name="fork-test", actor_name="work", args=(i,), kwargs={},
                                           options={}))
                try:
                    wait_until(lambda: len(_instances_with(sink, service="fork-worker")) >= 2, timeout=40,
                               what="spans from both worker processes")
                except TimeoutError:
                    pytest.fail(f"spans only from {sorted(_instances_with(sink, service='fork-worker'))}; "
                                f"log:\n{proc.log_tail()}")
                span_instances = _instances_with(sink, service="fork-worker")
                pids = {int(r["process.pid"]) for r in span_instances.values()}
                assert len(pids) >= 2, span_instances
                wait_until(
                    lambda: len(_instances_with(sink, service="fork-worker", metric="fork_worker.jobs")) >= 2,
                    timeout=20, what="metrics from both worker processes",
                )
                ids = set(_instances_with(sink, service="fork-worker", metric="fork_worker.jobs"))
                before = _metric_points_by_instance(sink, "fork_worker.jobs")
                time.sleep(2.0)
                after = _metric_points_by_instance(sink, "fork_worker.jobs")
                for inst in ids:
                    assert after.get(inst, 0) > before.get(inst, 0), f"metrics stopped for {inst}: {after}"
        finally:
            broker.close()


def _dropped_by_instance(sink: OTLPSink) -> dict[str, int]:
    """service.instance.id -> latest ``agentpress_otel.exporter.dropped`` total (cumulative counter)."""
    out: dict[str, int] = {}
    with sink.lock:
        for r in sink.received.metrics:
            for rm in r.resource_metrics:
                inst = str(attrs_to_dict(rm.resource.attributes).get("service.instance.id"))
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == "agentpress_otel.exporter.dropped":
                            out[inst] = max(out.get(inst, 0), sum(int(p.as_int) for p in m.sum.data_points))
    return out


def test_forked_child_self_telemetry_starts_at_zero() -> None:
    """Drop and error counts are per process: a child must not report the parent's losses as its own."""
    code = """
        import os
        import agentpress_otel
        from agentpress_otel import _selftel
        tel = agentpress_otel.instrument(service_name="selftel-fork", integrations=[], logs=False)
        _selftel.record_dropped("spans", "queue_full", 7)
        _selftel.record_error("parent.only")
        pid = os.fork()
        if pid == 0:
            clean = _selftel.dropped() == 0 and _selftel.errors() == 0
            _selftel.record_dropped("spans", "queue_full", 2)
            flushed = tel.force_flush(10)
            os._exit(0 if clean and flushed else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert _selftel.dropped() == 7 and _selftel.errors() == 1  # the parent keeps its own
        assert tel.force_flush(10)
        print("child", pid, "parent", os.getpid())
    """
    with OTLPSink() as sink:
        res = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
            env={**os.environ, **ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint},
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        wait_until(lambda: len(_dropped_by_instance(sink)) >= 2, timeout=10, what="drop counts from both processes")
        assert sorted(_dropped_by_instance(sink).values()) == [2, 7]
