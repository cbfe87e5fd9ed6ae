"""Shared test fixtures. A missing real component skips locally but fails under CI=true."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import structlog

from agentpress_otel import _sdk_globals as _sdk_globals_mod
from agentpress_otel import _selftel, _setup
from agentpress_otel._harness._proc import ComponentMissing, in_ci
from agentpress_otel.genai import _state
from agentpress_otel.genai import prices as prices_mod
from agentpress_otel.redaction import _engine as redaction_engine
from agentpress_otel.testing import Kit, make_kit

T = TypeVar("T")


def need(factory: Callable[[], T]) -> T:
    """Call ``factory``; on :class:`ComponentMissing` skip (locally) or fail (CI)."""
    try:
        return factory()
    except ComponentMissing as exc:
        if in_ci():
            pytest.fail(f"component missing under CI=true: {exc}")
        pytest.skip(str(exc))



@pytest.fixture
def redis_url() -> Iterator[str]:
    """A throw-away redis-server on loopback for one test (a real broker for Dramatiq's worker processes)."""
    from harness import redis as redis_harness

    srv = need(redis_harness.start_redis)
    try:
        yield srv.url
    finally:
        srv.stop()

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


def _sdk_globals() -> tuple[Any, ...]:
    """What ``instrument()`` and the SDK set process-wide: our handle and the three global providers."""
    return (_setup._current, _setup._providers_shut_down, _sdk_globals_mod.snapshot())


def _set_sdk_globals(saved: tuple[Any, ...]) -> None:
    current, shut_down, providers = saved
    _setup._current, _setup._providers_shut_down = current, shut_down
    _sdk_globals_mod.restore(providers)  # the one module that writes the API's private provider slots


@pytest.fixture(autouse=True)
def _restore_global_state() -> Iterator[None]:
    """Every test starts with zeroed self-telemetry and leaves the process as it found it.

    Undone after each test, whatever it changed: the ``instrument()`` handle and the SDK's global providers,
    the GenAI state and price table, the process-wide redactor, structlog's configuration, the root logger's
    handlers and level, and the self-telemetry counters. State a module-scoped fixture set up before the test
    is put back, not cleared, so such fixtures keep working in any test order.
    """
    _selftel.reset()
    _selftel.take_strict_failures()  # a straggler thread of an earlier test: not this test's
    sdk = _sdk_globals()
    genai_state = _state.STATE
    prices = dict(prices_mod._prices)
    redactor = redaction_engine._default
    structlog_config = structlog.get_config() if structlog.is_configured() else None
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    yield
    if _sdk_globals() != sdk:
        _setup._reset_for_tests()  # shuts a leftover handle down and clears the SDK's set-once guards
        _set_sdk_globals(sdk)
    if _state.STATE is not genai_state:
        _state.unconfigure()
        _state.STATE = genai_state
    if prices_mod._prices != prices:
        prices_mod.reset_prices()
        with prices_mod._lock:
            prices_mod._prices.clear()
            prices_mod._prices.update(prices)
    redaction_engine._default = redactor
    structlog.reset_defaults()
    if structlog_config is not None:
        structlog.configure(**structlog_config)
    root.handlers[:] = root_handlers
    root.setLevel(root_level)
    _selftel.reset()
    _selftel.set_strict(True)
    failures = _selftel.take_strict_failures()
    if failures:
        exc = failures[0]
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        pytest.fail(f"telemetry code raised on a background thread during this test:\n{trace}")


def pytest_configure(config: pytest.Config) -> None:
    """Run the suite in strict mode: an exception raised by our own code inside the error guard fails the test."""
    _selftel.set_strict(True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the file order of tests marked ``in_order``; every other test stays where pytest-randomly put it.

    Such a module's tests are steps of one scenario on a module-scoped fixture (e.g. stop a gateway, then
    check what the survivors do). Runs after pytest-randomly's shuffle, so the order is still reproducible.
    """
    slots: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item.get_closest_marker("in_order") is not None:
            slots.setdefault(str(item.path), []).append(i)
    for indexes in slots.values():
        steps = sorted((items[i] for i in indexes), key=lambda it: it.location[1] or 0)
        for i, item in zip(indexes, steps, strict=True):
            items[i] = item


@pytest.fixture
def kit() -> Iterator[Kit]:
    """GenAI telemetry bound to in-memory providers for one test (the autouse reset restores the rest).

    Modules that need more around it (a LiteLLM server, Dramatiq) define their own ``kit``.
    """
    with make_kit() as k:
        yield k


@pytest.fixture
def capture_kit() -> Iterator[Kit]:
    """:func:`kit` with content capture on."""
    with make_kit(capture_content=True) as k:
        yield k
