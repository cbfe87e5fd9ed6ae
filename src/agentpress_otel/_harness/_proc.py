"""Generic managed subprocess: free ports, readiness probes, bounded stop, kept logs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ComponentMissing(RuntimeError):
    """A real component (binary, package) needed by a test or command is not installed."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find_binary(name: str, *extra_dirs: Path) -> str:
    """Return the path of ``name`` (searched in ``extra_dirs``, then PATH).

    Raises :class:`ComponentMissing` with an install hint when absent.
    """
    for d in extra_dirs:
        cand = d / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which(name)
    if found:
        return found
    raise ComponentMissing(f"{name!r} not found on PATH; install it (see docs/pipeline.md; `make setup` in a checkout)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_url(port: int, path: str = "") -> str:
    """The one spelling of a local component's HTTP address (components bind 127.0.0.1 only).

    Example::

        loopback_url(9090, "/-/ready")  # "http://127.0.0.1:9090/-/ready"
    """
    return f"http://127.0.0.1:{port}{path}"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until(pred: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")


@dataclass
class ManagedProcess:
    """A subprocess with its log kept in a file, stopped with SIGTERM then SIGKILL."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str | Path | None = None
    log_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    log_path: Path | None = field(default=None, init=False)

    def start(self, *, ready: Callable[[], bool] | None = None, timeout: float = 30.0) -> ManagedProcess:
        log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix=f"apotel-{self.name}-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.name}.log"
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(self.cwd) if self.cwd else None,
                start_new_session=True,
            )
        if ready is not None:
            try:
                wait_until(lambda: self._alive_or_raise() and ready(), timeout=timeout, what=f"{self.name} ready")
            except BaseException:
                self.stop()
                raise
        return self

    def _alive_or_raise(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.log_tail()}")
        return True

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def kill(self) -> None:
        """SIGKILL the whole process group (crash simulation)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def managed(
    proc: ManagedProcess, *, ready: Callable[[], bool] | None = None, timeout: float = 30.0
) -> Iterator[ManagedProcess]:
    proc.start(ready=ready, timeout=timeout)
    try:
        yield proc
    finally:
        proc.stop()
