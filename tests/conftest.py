"""Shared test fixtures. A missing real component skips locally but fails under CI=true."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from agentpress_otel._harness._proc import ComponentMissing, in_ci
from agentpress_otel.genai import _state
from agentpress_otel.genai import prices as prices_mod
from agentpress_otel.genai._testkit import Kit, make_kit

T = TypeVar("T")


def need(factory: Callable[[], T]) -> T:
    """Call ``factory``; on :class:`ComponentMissing` skip (locally) or fail (CI)."""
    try:
        return factory()
    except ComponentMissing as exc:
        if in_ci():
            pytest.fail(f"component missing under CI=true: {exc}")
        pytest.skip(str(exc))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI=true no test may skip (importorskip included): a missing component is a failure."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under CI=true (components must be present): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    """The same for a whole module skipped at collection (a module-level ``importorskip``)."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped under CI=true (components must be present): {report.longrepr}"


@pytest.fixture
def kit() -> Iterator[Kit]:
    """GenAI telemetry bound to in-memory providers for one test; prices reset afterwards.

    Modules that need more around it (a LiteLLM server, Dramatiq) define their own ``kit``.
    """
    k = make_kit()
    _state.configure(k)
    yield k
    _state.unconfigure()
    prices_mod.reset_prices()
    k.shutdown()
