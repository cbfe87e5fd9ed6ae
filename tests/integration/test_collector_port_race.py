"""The Collector launchers survive the free-port race: a port taken between ``free_port()`` and the bind."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from agentpress_otel._harness import _proc, collector
from conftest import need

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process (here, this test) holds while the stand-in starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_standin_starts_on_new_ports_when_its_first_port_is_taken(taken_port: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The real stand-in binary first gets a port already bound elsewhere; its launcher retries with fresh ports."""
    need(collector.ensure_collector_binary)
    handed = iter([taken_port])
    real = _proc.free_port
    monkeypatch.setattr(collector, "free_port", lambda: next(handed, None) or real())
    tempo = collector.start_standin("traces")
    try:
        assert tempo.running
        assert tempo.port != taken_port
    finally:
        tempo.stop()
