"""A throw-away ``redis-server`` on a free loopback port: no persistence, stopped cleanly.

Used by the runtime/Redis/Dramatiq tests, the demo stack and benchmarks. Debian's ``redis-server``
package provides the binary; :class:`ComponentMissing` is raised when it is absent.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agentpress_otel._harness._proc import ComponentMissing, ManagedProcess, find_binary, free_port

__all__ = ["ComponentMissing", "RedisServer", "redis_server", "start_redis"]


def _ping(port: int, timeout: float = 0.5) -> bool:
    """Speak raw RESP so the harness does not depend on redis-py being installed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _pinger(port: int) -> Callable[[], bool]:
    return lambda: _ping(port)


@dataclass
class RedisServer:
    """A running redis-server; ``url`` is ready for ``redis.Redis.from_url`` / Dramatiq's RedisBroker."""

    port: int
    process: ManagedProcess
    workdir: Path
    host: str = "127.0.0.1"
    extra_args: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def ping(self) -> bool:
        return _ping(self.port)

    def stop(self) -> None:
        # redis-server exits promptly on SIGTERM when there is nothing to save.
        self.process.stop(timeout=10.0)

    def log_tail(self, n: int = 60) -> str:
        return self.process.log_tail(n)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(*, timeout: float = 15.0, extra_args: tuple[str, ...] = ()) -> RedisServer:
    """Start ``redis-server`` on 127.0.0.1 at a free port, without RDB/AOF persistence.

    Raises :class:`ComponentMissing` if the binary is not installed. The caller must ``stop()`` it
    (or use :func:`redis_server`).

    Example::

        srv = start_redis()
        try:
            r = redis.Redis.from_url(srv.url)
        finally:
            srv.stop()
    """
    binary = find_binary("redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="apotel-redis-"))
    last_exc: BaseException | None = None
    # A free port can be taken between probing and binding; retry a couple of times.
    for _ in range(3):
        port = free_port()
        argv = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(workdir),
            "--loglevel", "warning",
            *extra_args,
        ]
        proc = ManagedProcess(name=f"redis-{port}", argv=argv, log_dir=workdir)
        try:
            proc.start(ready=_pinger(port), timeout=timeout)
        except (RuntimeError, TimeoutError) as exc:
            last_exc = exc
            continue
        return RedisServer(port=port, process=proc, workdir=workdir, extra_args=tuple(extra_args))
    raise RuntimeError(f"redis-server did not start: {last_exc}")


@contextlib.contextmanager
def redis_server(*, timeout: float = 15.0) -> Iterator[RedisServer]:
    """Context manager around :func:`start_redis`; always stops the server.

    Example::

        with redis_server() as srv:
            print(srv.url)
    """
    srv = start_redis(timeout=timeout)
    try:
        yield srv
    finally:
        srv.stop()

