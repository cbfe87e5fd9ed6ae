"""One integration contract: every registered integration is an ``Integration`` and undoes itself cleanly.

The round trip drives each real integration through the registry against the real libraries (patch points are
found by scanning the libraries for wrapt proxies, not by asking our modules), inside a real ``instrument()``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel import _selftel
from agentpress_otel._config import INTEGRATIONS
from agentpress_otel.integrations import Integration, Skip, _registry, load
from agentpress_otel.integrations._registry import REGISTRY
from agentpress_otel.testing import capture
from harness.patches import import_targets, patch_counts, ping_app

# Slack attaches its handler only with a webhook URL; this one is never called (nothing logs at ERROR).
_HOOK = "http://127.0.0.1:9/slack-webhook"
_FAKE_AP = "apfake_contract"  # an AgentPress layout of our own, so the agentpress integration applies here


def test_registry_lists_exactly_the_configurable_integrations() -> None:
    """Every name ``integrations=`` accepts has one registry entry, and nothing else is registered."""
    assert set(REGISTRY) == set(INTEGRATIONS)


@pytest.mark.parametrize("name", INTEGRATIONS)
def test_every_integration_satisfies_the_protocol(name: str) -> None:
    """Each module is an ``Integration``: NAME and REQUIRES match its entry, one-argument instrument() -> None."""
    entry = REGISTRY[name]
    if entry.requires is not None:
        pytest.importorskip(entry.requires)
    mod = importlib.import_module(entry.module)
    assert isinstance(mod, Integration)
    assert load(name) is mod
    assert name == mod.NAME
    assert entry.requires == mod.REQUIRES
    sig = inspect.signature(mod.instrument)
    params = list(sig.parameters.values())
    assert params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD)
    assert all(p.default is not p.empty for p in params[1:]), "extra options must be optional"
    assert sig.return_annotation in (None, "None")
    assert not inspect.signature(mod.uninstrument).parameters


@pytest.fixture
def fake_agentpress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A minimal AgentPress layout (thread manager + response processor), imported, named by the env variable."""
    pkg = tmp_path / _FAKE_AP
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tm.py").write_text("class ThreadManager:\n    async def run_thread(self, thread_id):\n        return 1\n")
    (pkg / "rp.py").write_text("class ResponseProcessor:\n    async def _execute_tool(self, call):\n        return 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("AGENTPRESS_OTEL_AGENTPRESS_MODULES", f"{_FAKE_AP}.tm,{_FAKE_AP}.rp")
    importlib.import_module(f"{_FAKE_AP}.tm")
    importlib.import_module(f"{_FAKE_AP}.rp")
    yield
    for m in [m for m in sys.modules if m.startswith(_FAKE_AP)]:
        monkeypatch.delitem(sys.modules, m)


@pytest.mark.parametrize("name", INTEGRATIONS)
def test_instrument_uninstrument_instrument_patches_once(name: str, fake_agentpress: None) -> None:
    """Through the registry, uninstrument() removes exactly this integration's patches and instrument() (twice)
    puts them back once: no point ends up wrapped twice, nothing else changes."""
    requires = REGISTRY[name].requires
    if requires is not None:
        pytest.importorskip(requires)
    import_targets()
    app = ping_app()
    baseline = patch_counts(app, prefixes=(_FAKE_AP,))
    with capture(app=app, slack_webhook_url=_HOOK) as cap:
        tel = cap.telemetry
        assert name in tel.integrations and not tel._deferred  # it applies here, so the round trip means something
        mod = load(name)

        def again() -> None:
            if name == "fastapi":  # apps are instrumented one by one
                _registry.instrument_app(tel, app)
            else:
                mod.instrument(tel)

        on = patch_counts(app, prefixes=(_FAKE_AP,))
        assert on and max(on.values()) == 1, f"wrapped more than once: {on}"
        mod.uninstrument()
        off = patch_counts(app, prefixes=(_FAKE_AP,))
        mine = set(on) - set(off)
        assert mine, f"{name}: uninstrument() removed nothing"
        assert set(off) <= set(on) and all(off[k] == on[k] for k in off), f"{name}: touched others' patches"
        again()
        again()  # idempotent
        assert patch_counts(app, prefixes=(_FAKE_AP,)) == on
    assert patch_counts(app, prefixes=(_FAKE_AP,)) == baseline  # and shutdown undoes the re-instrumented one


def _fake_module(name: str, exc: BaseException) -> types.ModuleType:
    mod = types.ModuleType(f"tests_fake_integration_{name}")
    mod.NAME = name  # type: ignore[attr-defined]
    mod.REQUIRES = None  # type: ignore[attr-defined]

    def instrument(telemetry: Any) -> None:
        raise exc

    mod.instrument = instrument  # type: ignore[attr-defined]
    mod.uninstrument = lambda: None  # type: ignore[attr-defined]
    return mod


@pytest.mark.parametrize(("exc", "warned"), [(Skip("not here"), False), (ImportError("lib gone"), False),
                                             (RuntimeError("broken"), True)])
def test_registry_skips_quietly_and_reports_failures(
    exc: BaseException, warned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Skip`` and a missing library leave the integration out quietly; any other failure is counted and warned
    about, and never reaches the caller of ``instrument()``."""
    mod = _fake_module("runtime", exc)
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(REGISTRY, "runtime", _registry._Entry(mod.__name__))
    before = _selftel.errors("instrument.runtime")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with capture(integrations=["runtime"]) as cap:  # the real instrument(): it must not raise
            listed = list(cap.telemetry.integrations)
            counted = _selftel.errors("instrument.runtime") - before
    assert "runtime" not in listed
    got = [str(w.message) for w in caught if "could not instrument runtime" in str(w.message)]
    assert len(got) == (1 if warned else 0), got
    assert counted == (1 if warned else 0)


def test_absent_library_is_skipped_without_importing_our_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """An integration whose library is not installed is neither deferred nor listed, and its module (which may
    import the library at the top, as Dramatiq's does) is never imported."""
    monkeypatch.setitem(REGISTRY, "dramatiq", _registry._Entry("tests_no_such_module", "no_such_library_xyz"))
    with capture(integrations=["dramatiq"]) as cap:
        assert "dramatiq" not in cap.telemetry.integrations and not cap.telemetry._deferred
    assert "tests_no_such_module" not in sys.modules
