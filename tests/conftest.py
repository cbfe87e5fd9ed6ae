"""Shared test fixtures. A missing real component skips locally but fails under CI=true."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from agentpress_otel._harness._proc import ComponentMissing, in_ci

T = TypeVar("T")


def need(factory: Callable[[], T]) -> T:
    """Call ``factory``; on :class:`ComponentMissing` skip (locally) or fail (CI)."""
    try:
        return factory()
    except ComponentMissing as exc:
        if in_ci():
            pytest.fail(f"component missing under CI=true: {exc}")
        pytest.skip(str(exc))
