"""Test-only pipeline helpers (moved out of the wheel): ``otelcol validate``, a short real start that returns the
Collector's log, and the whole local pipeline (Prometheus + Tempo/Loki stand-ins + the Collector).

The components themselves start through ``agentpress_otel._harness`` (the same code ``agentpress-otel stack``
runs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from agentpress_otel._harness._proc import ManagedProcess, free_port
from agentpress_otel._harness.collector import (
    COLLECTOR_CONFIG,
    READY_LINE,
    Collector,
    StandIn,
    ensure_collector_binary,
    start_collector,
    start_standin,
)
from agentpress_otel._harness.prometheus import Prometheus

__all__ = ["Pipeline", "local_pipeline", "startup_log", "validate_config"]


def validate_config(
    config: Path = COLLECTOR_CONFIG, *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``otelcol-apotel validate`` on ``config`` and return the completed process.

    Example::

        res = validate_config()
        assert res.returncode == 0, res.stderr
    """
    binary = ensure_collector_binary()
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [binary, "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def startup_log(
    config: Path, *, env: Mapping[str, str] | None = None, timeout: float = 30.0, settle_s: float = 1.0
) -> str:
    """Run ``otelcol-apotel --config=config`` until it is up, stop it, and return everything it logged.

    ``validate`` prints nothing on success, and deprecation warnings (e.g. ``"hostmetrics" alias is deprecated``)
    are only logged when components are built at start-up, so this is how tests look for them. Waits for the
    Collector's ``Everything is ready`` line (plus ``settle_s`` for late warnings), then SIGTERM. Raises
    ``RuntimeError`` if it exits early or never gets ready; the log is in the message.

    Example::

        log = startup_log(HOSTMETRICS_CONFIG, env={"HOSTMETRICS_ROOT_PATH": "/"})
        assert "deprecated" not in log.lower()
    """
    binary = ensure_collector_binary()
    wd = Path(tempfile.mkdtemp(prefix="apotel-otelcol-startup-"))
    proc = ManagedProcess(name="otelcol", argv=[binary, f"--config={config}"], env=env, cwd=wd, log_dir=wd)

    def ready() -> bool:
        return proc.log_path is not None and READY_LINE in proc.log_path.read_text(errors="replace")

    try:
        proc.start(ready=ready, timeout=timeout)
        time.sleep(settle_s)
    except TimeoutError as exc:
        raise RuntimeError(f"collector never logged {READY_LINE!r}:\n{proc.log_tail(80)}") from exc
    finally:
        proc.stop()
    assert proc.log_path is not None
    text = proc.log_path.read_text(errors="replace")
    shutil.rmtree(wd, ignore_errors=True)
    return text




@dataclass
class Pipeline:
    """A running local pipeline; ``collector.otlp_grpc_endpoint`` is where apps send OTLP."""

    collector: Collector
    tempo: StandIn
    loki: StandIn
    prometheus: Prometheus
    workdir: Path


@contextlib.contextmanager
def local_pipeline(
    *,
    env: Mapping[str, str] | None = None,
    cors_origins: list[str] | None = None,
    workdir: Path | None = None,
    scrape_interval: str | None = "1s",
) -> Iterator[Pipeline]:
    """Start Prometheus, the Tempo/Loki stand-ins and the Collector (shipped configs); stop them all on exit.

    Prometheus scrapes the Collector's self-metrics through the shipped ``otel-collector`` job.

    Example::

        with local_pipeline(env={"OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100"}) as p:
            exporter = OTLPSpanExporter(endpoint=p.collector.otlp_grpc_endpoint, insecure=True)
    """
    from agentpress_otel._harness.prometheus import start_prometheus

    wd = workdir or Path(tempfile.mkdtemp(prefix="apotel-pipeline-"))
    started: list[Collector | StandIn | Prometheus] = []
    try:
        tempo = start_standin("traces", workdir=wd / "tempo")
        started.append(tempo)
        loki = start_standin("logs", workdir=wd / "loki")
        started.append(loki)
        metrics_port = free_port()
        prom = start_prometheus(
            targets={"otel-collector:8888": f"127.0.0.1:{metrics_port}"},
            scrape_interval=scrape_interval,
            workdir=wd / "prometheus",
        )
        started.append(prom)
        col = start_collector(
            traces_endpoint=tempo.endpoint,
            logs_endpoint=loki.endpoint,
            remote_write_url=prom.remote_write_url,
            env=env,
            workdir=wd / "otelcol",
            cors_origins=cors_origins,
            metrics_port=metrics_port,
        )
        started.append(col)
        yield Pipeline(collector=col, tempo=tempo, loki=loki, prometheus=prom, workdir=wd)
    finally:
        for proc in reversed(started):
            proc.stop()
