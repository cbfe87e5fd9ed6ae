"""``agentpress-otel stack up|down|status``: our Collector plus Prometheus and Alertmanager, without Docker.

``up`` finds our Collector build (``--collector PATH``, ``AGENTPRESS_OTEL_COLLECTOR_BIN``, or the per-user cache
``~/.cache/agentpress-otel/<manifest key>/``, building it there with Go the first time) and starts, through the
harness, the same binaries and shipped configs (package data) the tests use:

* the Collector with ``collector-config/config.yaml`` on the documented ports: OTLP gRPC 4317, OTLP/HTTP 4318,
  browser OTLP/HTTP 4319 (CORS allowlist from ``--cors-origin``); a free port instead when a default is taken;
* Tempo and Loki stand-ins (our Collector build writing OTLP/JSON lines to files), since the real ones run only in
  the compose stack;
* Prometheus on 9090 (rules from ``stack/prometheus/rules``) and Alertmanager on 9093 when installed, with
  Alertmanager's Slack receiver pointed at a local Slack stand-in whose log shows every message;
* with ``--hostmetrics``, the host-metrics agent (``collector-config/hostmetrics.yaml``) sending to the Collector.

The processes outlive the command; their pids, ports and logs live in the state folder
(``$XDG_STATE_HOME/agentpress-otel``, default ``~/.local/state/agentpress-otel``; ``APOTEL_STATE_DIR`` overrides
it). ``down`` stops them (SIGTERM to each process group, SIGKILL after 10 s) and removes the pid files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentpress_otel._harness._proc import ComponentMissing, ManagedProcess, free_port, http_ok, port_open
from agentpress_otel._harness.collector_build import ENV_BIN, collector_binary

#: The documented defaults (docs/pipeline.md); ``stack up`` flags override each.
DEFAULT_PORTS: Mapping[str, int] = {"grpc": 4317, "http": 4318, "browser": 4319, "prometheus": 9090,
                                    "alertmanager": 9093}
DEFAULT_CORS_ORIGINS = ("http://localhost:5173",)


def state_dir() -> Path:
    """Per user, so ``stack down``/``status`` work from any folder: ``$XDG_STATE_HOME/agentpress-otel``.

    ``APOTEL_STATE_DIR`` overrides it (tests use a private directory so they never touch a developer's stack).
    """
    override = os.environ.get("APOTEL_STATE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agentpress-otel"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped) counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _start_ticks(pid: int) -> int | None:
    """The process start time (clock ticks after boot, /proc/<pid>/stat field 22), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]


def _record(sd: Path, name: str, proc: ManagedProcess, **info: Any) -> dict[str, Any]:
    assert proc.proc is not None
    pid = proc.proc.pid
    (sd / f"{name}.pid").write_text(f"{pid}\n")
    # The full command line and the start time identify the process: a pid alone may be reused.
    return {"name": name, "pid": pid, "argv0": str(proc.argv[0]), "argv": [str(a) for a in proc.argv],
            "start_ticks": _start_ticks(pid), "log": str(proc.log_path), **info}


def _load(sd: Path) -> list[dict[str, Any]]:
    f = sd / "stack.json"
    if not f.exists():
        return []
    try:
        data = json.loads(f.read_text())
    except ValueError:
        return []
    comps: list[dict[str, Any]] = data.get("components", [])
    return comps


def _running(comp: dict[str, Any]) -> bool:
    """Whether the recorded process still runs: same pid, same start time and same full command line
    (``stack down`` must never signal an unrelated process that got the pid later)."""
    pid = int(comp.get("pid", 0))
    if pid <= 0 or not _alive(pid):
        return False
    ticks = comp.get("start_ticks")
    if ticks is not None and _start_ticks(pid) != int(ticks):
        return False
    argv = comp.get("argv")
    if argv:
        return _argv(pid) == [str(a) for a in argv]
    # stack.json written before argv/start_ticks were recorded: the whole first argument must match.
    argv0 = str(comp.get("argv0", ""))
    return bool(argv0) and _argv(pid)[:1] == [argv0]


class PortTaken(RuntimeError):
    """A port chosen with a flag is already in use."""


def _pick_port(name: str, chosen: int | None, console: Console) -> int:
    """The port given by a flag (which must be free), else the documented default, else a free one."""
    if chosen is not None:
        if chosen and port_open(chosen):
            raise PortTaken(f"--{name}-port {chosen} is already in use")
        return chosen or free_port()
    default = DEFAULT_PORTS[name]
    if not port_open(default):
        return default
    port = free_port()
    console.print(f"[yellow]port {default} ({name}) is taken: using {port}[/]")
    return port


def up(console: Console, *, build: bool = True, collector: str | None = None,
       ports: Mapping[str, int | None] | None = None, cors_origins: Sequence[str] = (),
       hostmetrics: bool = False) -> int:
    """Start the stack; ``ports`` maps ``grpc``/``http``/``browser``/``prometheus``/``alertmanager`` to a port
    (``None``: the documented default unless taken, ``0``: any free port)."""
    sd = state_dir()
    existing = [c for c in _load(sd) if _running(c)]
    if existing:
        console.print("[yellow]The stack is already running[/] (use `agentpress-otel stack down` first).")
        return status(console)
    sd.mkdir(parents=True, exist_ok=True)
    from agentpress_otel._harness import alertmanager as am_h
    from agentpress_otel._harness import collector as col_h
    from agentpress_otel._harness import prometheus as prom_h

    started: list[Any] = []
    comps: list[dict[str, Any]] = []
    chosen = dict(ports or {})
    try:
        if collector:
            os.environ[ENV_BIN] = collector  # the one lookup (collector_build) honours it for every process below
        console.print("Finding our Collector build (the first run builds it with Go: several minutes) …")
        binary = collector_binary(build_if_missing=build)
        console.print(f"[dim]Collector: {binary}[/]")
        os.environ[ENV_BIN] = str(binary)
        port = {name: _pick_port(name, chosen.get(name), console) for name in DEFAULT_PORTS}
        origins = list(cors_origins) or list(DEFAULT_CORS_ORIGINS)

        slack = ManagedProcess("slack-stub", [sys.executable, "-m", "agentpress_otel._harness.slack_stub"],
                               log_dir=sd / "slack")
        slack.start(ready=lambda: "listening:" in slack.log_tail(5), timeout=30)
        started.append(slack)
        m = re.search(r"listening: (\S+)", slack.log_tail(5))
        slack_url = m.group(1) if m else ""
        comps.append(_record(sd, "slack-stub", slack, url=slack_url, what="Slack stand-in (messages in its log)"))

        tempo = col_h.start_standin("traces", workdir=sd / "tempo")
        started.append(tempo)
        assert tempo.process is not None
        comps.append(_record(sd, "tempo-standin", tempo.process, endpoint=tempo.endpoint, output=str(tempo.output),
                             what="Tempo stand-in (OTLP/JSON lines)"))
        loki = col_h.start_standin("logs", workdir=sd / "loki")
        started.append(loki)
        assert loki.process is not None
        comps.append(_record(sd, "loki-standin", loki.process, endpoint=loki.endpoint, output=str(loki.output),
                             what="Loki stand-in (OTLP/JSON lines)"))

        metrics_port = free_port()
        am_url = prom_url = None
        remote_write = f"http://127.0.0.1:{free_port()}/api/v1/write"  # nowhere, when Prometheus is missing
        targets = {"otel-collector:8888": f"127.0.0.1:{metrics_port}"}
        try:
            (sd / "alertmanager").mkdir(parents=True, exist_ok=True)
            am = am_h.Alertmanager(webhook_url=slack_url, workdir=sd / "alertmanager",
                                   port=port["alertmanager"]).start()
            started.append(am)
            assert am.proc is not None
            am_url = am.url
            targets["alertmanager:9093"] = f"127.0.0.1:{am.port}"
            comps.append(_record(sd, "alertmanager", am.proc, url=am.url, what="Alertmanager → Slack stand-in"))
        except ComponentMissing as exc:
            console.print(f"[yellow]Alertmanager skipped:[/] {exc}")
        try:
            prom = prom_h.start_prometheus(targets=targets, workdir=sd / "prometheus", port=port["prometheus"])
            started.append(prom)
            prom_url = prom.url
            remote_write = prom.remote_write_url
            comps.append(_record(sd, "prometheus", prom.process, url=prom.url, what="Prometheus (remote write in)"))
        except ComponentMissing as exc:
            console.print(f"[yellow]Prometheus skipped:[/] {exc}")

        zpages_port = free_port()
        col = col_h.start_collector(
            traces_endpoint=tempo.endpoint, logs_endpoint=loki.endpoint, remote_write_url=remote_write,
            workdir=sd / "collector", metrics_port=metrics_port, cors_origins=origins,
            env={"OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{port['grpc']}",
                 "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{port['http']}",
                 "OTELCOL_BROWSER_ENDPOINT": f"127.0.0.1:{port['browser']}",
                 "OTELCOL_ZPAGES_ENDPOINT": f"127.0.0.1:{zpages_port}"},
        )
        started.append(col)
        assert col.process is not None
        comps.insert(0, _record(sd, "collector", col.process, grpc=f"http://127.0.0.1:{port['grpc']}",
                                http=f"http://127.0.0.1:{port['http']}", browser=f"http://127.0.0.1:{port['browser']}",
                                cors=", ".join(origins), health=f"http://127.0.0.1:{col.health_port}/health",
                                metrics=col.metrics_url, zpages=f"http://127.0.0.1:{zpages_port}/debug/tracez",
                                what="OpenTelemetry Collector (collector-config/config.yaml)"))
        if hostmetrics:
            agent = col_h.start_hostmetrics_agent(f"127.0.0.1:{port['grpc']}", host_name=socket.gethostname(),
                                                  workdir=sd / "hostmetrics")
            started.append(agent)
            comps.append(_record(sd, "hostmetrics", agent, what="host-metrics agent → Collector (system.* metrics)"))
    except Exception as exc:  # noqa: BLE001 - any start-up failure: report it, stop what started, exit 1
        console.print(f"[bold red]✗ stack up failed:[/] {exc}")
        for s in reversed(started):
            with contextlib.suppress(Exception):
                s.stop()
        for c in comps:
            (sd / f"{c['name']}.pid").unlink(missing_ok=True)
        return 1
    (sd / "stack.json").write_text(json.dumps({"started": time.time(), "components": comps,
                                               "prometheus": prom_url, "alertmanager": am_url}, indent=2))
    console.print("[bold green]✓ stack is up[/]")
    status(console)
    grpc = comps[0]["grpc"]
    console.print(f"\nNext: [bold]agentpress-otel demo --endpoint {grpc}[/]  ·  check it: "
                  f"[bold]agentpress-otel doctor --endpoint {grpc}[/]  ·  stop: [bold]agentpress-otel stack down[/]")
    return 0


def down(console: Console) -> int:
    sd = state_dir()
    comps = _load(sd)
    if not comps:
        console.print(f"Nothing to stop (no {sd / 'stack.json'}).")
        return 0
    problems = 0
    for c in comps:
        pid = int(c.get("pid", 0))
        if _running(c):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)  # started in its own session: its group is its pid
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                time.sleep(0.2)
            if _alive(pid):
                problems += 1
                console.print(f"[red]✗ {c['name']} (pid {pid}) did not stop[/]")
                continue
            console.print(f"✓ stopped {c['name']} (pid {pid})")
        else:
            console.print(f"[dim]{c['name']} (pid {pid}) was not running[/]")
        (sd / f"{c['name']}.pid").unlink(missing_ok=True)
    if not problems:
        (sd / "stack.json").unlink(missing_ok=True)
    return 1 if problems else 0


_WHERE = (("grpc", "OTLP gRPC"), ("http", "OTLP/HTTP"), ("browser", "browser OTLP/HTTP"),
          ("cors", "browser CORS origins"), ("health", "health"), ("metrics", "self-metrics"),
          ("zpages", "zPages"), ("url", "UI / API"), ("endpoint", "OTLP in"), ("output", "writes"))


def status(console: Console) -> int:
    comps = _load(state_dir())
    if not comps:
        console.print("The stack is not running (start it with `agentpress-otel stack up`).")
        return 1
    t = Table(title="agentpress-otel stack", title_justify="left")
    for col in ("component", "pid", "state", "log"):
        t.add_column(col, overflow="fold")
    down_count = 0
    urls: list[str] = []
    for c in comps:
        alive = _running(c)
        health = c.get("health") or (f"{c['url']}/-/ready" if c.get("url") and c["name"] in
                                     ("prometheus", "alertmanager") else None)
        healthy = alive and (health is None or http_ok(health, timeout=1.0))
        down_count += not healthy
        state = "[green]up[/]" if healthy else ("[yellow]unhealthy[/]" if alive else "[red]down[/]")
        urls += [f"  {c['name']:<14} {label or k:<22} {c[k]}" for k, label in _WHERE if c.get(k)]
        t.add_row(f"{c['name']}\n[dim]{c.get('what', '')}[/]", str(c.get("pid")), state, str(c.get("log")))
    console.print(t)
    # Plain lines, never folded: every address stays one copyable (and greppable) string.
    console.print("Where:", soft_wrap=True)
    for line in urls:
        console.print(line, soft_wrap=True, markup=False)
    return 1 if down_count else 0


def run(action: str, *, build: bool = True, console: Console | None = None, collector: str | None = None,
        ports: Mapping[str, int | None] | None = None, cors_origins: Sequence[str] = (),
        hostmetrics: bool = False) -> int:
    """Dispatch ``stack up|down|status``; returns the exit code (options apply to ``up``).

    Example::

        raise SystemExit(run("up", ports={"grpc": 14317}, cors_origins=["http://localhost:3000"]))
    """
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if action == "up":
        return up(console, build=build, collector=collector, ports=ports, cors_origins=cors_origins,
                  hostmetrics=hostmetrics)
    if action == "down":
        return down(console)
    return status(console)
