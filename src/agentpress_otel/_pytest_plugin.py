"""The pytest plugin registered through the ``pytest11`` entry point: the ``telemetry_capture`` fixture, with no
import in a ``conftest.py``.

Kept small on purpose: pytest loads every installed plugin at start-up, so the test kit (in-memory exporters,
``instrument()``) is imported only when a test asks for the fixture.

Example::

    def test_agent_is_traced(telemetry_capture):
        run_my_agent()
        assert telemetry_capture.span("invoke_agent planner")

Options of :func:`agentpress_otel.testing.capture` go through indirect parametrization::

    @pytest.mark.parametrize("telemetry_capture", [{"service_name": "api"}], indirect=True)
    def test_named(telemetry_capture): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from agentpress_otel.testing import Capture

__all__ = ["telemetry_capture"]


@pytest.fixture(name="telemetry_capture")
def telemetry_capture(request: pytest.FixtureRequest) -> Iterator[Capture]:
    """``instrument()`` against in-memory exporters for one test; yields a :class:`~agentpress_otel.testing.Capture`."""
    from agentpress_otel.testing import capture

    opts: dict[str, Any] = getattr(request, "param", None) or {}
    with capture(**opts) as cap:
        yield cap
