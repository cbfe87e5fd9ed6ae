"""Progressive-rollout switches: each one really turns its part off.

* a disabled signal exports nothing (and the same action exports something when it is on);
* a disabled integration patches nothing: no wrapt proxy on the library, no handler, no app wrapper,
  and everything is undone after shutdown.

The integration checks are generic (they scan every class and function of the target libraries for
wrapt proxies), so integrations written by others are covered as they land.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from agentpress_otel import _setup
from agentpress_otel._config import INTEGRATIONS
from agentpress_otel.testing import Capture, capture
from harness.patches import import_targets, patch_points, ping_app

# Slack attaches its handler only with a webhook URL; this one is never called (nothing logs at ERROR).
_HOOK = "http://127.0.0.1:9/slack-webhook"

# Integrations that may defer patching to a post-import hook: their library must be loaded for the
# "it patched something" check.
_TARGET_LIB = {name: name for name in ("litellm", "redis", "httpx", "dramatiq", "structlog")}


@pytest.fixture(scope="module")
def all_on() -> tuple[set[str], set[str], set[str]]:
    """(baseline patch points, patch points with everything on, integrations that reported success)."""
    import_targets()
    _setup._reset_for_tests()
    baseline = patch_points()
    app = ping_app()
    with capture(app=app, slack_webhook_url=_HOOK) as cap:
        on = patch_points(app)
        names = set(cap.telemetry.integrations)
    after = patch_points(app)
    assert after == baseline, f"not undone after shutdown: {sorted(after - baseline)}"
    return baseline, on, names


# ---------------------------------------------------------------------------------------------
# integrations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INTEGRATIONS)
def test_disabled_integration_patches_nothing(name: str, all_on: tuple[set[str], set[str], set[str]]) -> None:
    """Disabling one integration leaves its patch points unpatched and patches nothing new."""
    baseline, on, enabled_ok = all_on
    app = ping_app()
    with capture(app=app, disabled_integrations=[name], slack_webhook_url=_HOOK) as cap:
        assert name not in cap.telemetry.integrations
        assert not cap.telemetry.config.enabled(name)
        now = patch_points(app)
    mine = on - now  # what this integration patched when it was on
    assert now <= on, f"disabling {name} patched something new: {sorted(now - on)}"
    assert now & mine == set()
    lib = _TARGET_LIB.get(name)
    if name in enabled_ok and (lib is None or lib in sys.modules):
        # It reported success when on (and its library is loaded, so a deferred post-import hook
        # has fired), so it must have patched something we can see.
        assert mine, f"{name} reported success but no patch point was found"
    assert patch_points(app) == baseline


def test_only_listed_integrations_patch_anything(all_on: tuple[set[str], set[str], set[str]]) -> None:
    """With an explicit integration list, only those integrations patch anything."""
    baseline, _on, _ = all_on
    app = ping_app()
    with capture(app=app, integrations=["runtime"]) as cap:
        assert set(cap.telemetry.integrations) <= {"runtime"}
        assert patch_points(app) - baseline == {"asyncio.base_events.BaseEventLoop.run_forever"}


def test_redis_switch_specifically(all_on: tuple[set[str], set[str], set[str]]) -> None:
    """The redis switch decides whether sync and async Redis commands are wrapped."""
    redis = pytest.importorskip("redis")
    import redis.asyncio as aioredis

    with capture(disabled_integrations=["redis"]):
        assert not hasattr(redis.Redis.execute_command, "__wrapped__")
        assert not hasattr(aioredis.Redis.execute_command, "__wrapped__")
    with capture() as cap:
        assert "redis" in cap.telemetry.integrations
        assert hasattr(redis.Redis.execute_command, "__wrapped__")
        assert hasattr(aioredis.Redis.execute_command, "__wrapped__")
    assert not hasattr(redis.Redis.execute_command, "__wrapped__")


def test_slack_switch_specifically() -> None:
    """The slack switch decides whether the Slack handler is attached to the root logger."""
    from agentpress_otel.integrations import slack

    root = logging.getLogger()
    before = list(root.handlers)

    def ours() -> list[logging.Handler]:
        return [h for h in root.handlers if isinstance(h, slack.SlackAlertHandler)]

    with capture(slack_webhook_url=_HOOK, disabled_integrations=["slack"]) as cap:
        assert "slack" not in cap.telemetry.integrations
        assert ours() == [] and slack.current_handler() is None
    with capture(slack_webhook_url=_HOOK) as cap:
        assert "slack" in cap.telemetry.integrations
        handler = slack.current_handler()
        assert handler is not None and ours() == [handler]
    assert ours() == [] and slack.current_handler() is None
    assert root.handlers == before


def test_litellm_switch_specifically(monkeypatch: pytest.MonkeyPatch) -> None:
    """The litellm switch decides whether LiteLLM's entry points are wrapped, and shutdown unwraps them."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    litellm = pytest.importorskip("litellm")

    def functions() -> tuple[Any, ...]:
        return litellm.completion, litellm.acompletion

    original = functions()
    with capture(disabled_integrations=["litellm"]) as cap:
        assert "litellm" not in cap.telemetry.integrations
        assert all(a is b for a, b in zip(functions(), original, strict=True))
    with capture() as cap:
        assert "litellm" in cap.telemetry.integrations
        patched = functions()
        assert all(a is not b for a, b in zip(patched, original, strict=True))
        assert litellm.completion.__wrapped__ is original[0]
    assert all(a is b for a, b in zip(functions(), original, strict=True))  # undone at shutdown


def test_runtime_switch_specifically() -> None:
    """The runtime switch decides whether the asyncio patch and the process/loop metrics exist."""
    with capture(disabled_integrations=["runtime"]) as cap:
        assert not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
        asyncio.run(asyncio.sleep(0.05))
        names = set(cap.metrics())
        assert not [n for n in names if n.startswith(("process.", "cpython.", "agentpress.asyncio."))], names
    with capture() as cap:
        assert hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
        asyncio.run(asyncio.sleep(0.3))
        names = set(cap.metrics())
        assert {"process.memory.usage", "agentpress.asyncio.loop_lag"} <= names


def test_integration_switch_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Integrations disabled by env are not instrumented."""
    pytest.importorskip("redis")
    import redis

    monkeypatch.setenv("AGENTPRESS_OTEL_DISABLED_INTEGRATIONS", "redis,runtime")
    with capture() as cap:
        assert "redis" not in cap.telemetry.integrations
        assert not hasattr(redis.Redis.execute_command, "__wrapped__")
        assert not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")


# ---------------------------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------------------------


def _emit_everything(cap: Capture) -> None:
    tracer = trace.get_tracer("switch-test")
    with tracer.start_as_current_span("switch-span"):
        logging.getLogger("switch.test").warning("switch log line")
    cap.telemetry.tracer_provider.get_tracer("switch-test").start_span("switch-span-2").end()
    cap.telemetry.meter_provider.get_meter("switch-test").create_counter("switch.counter").add(1)
    asyncio.run(asyncio.sleep(0.3))  # the runtime probe records loop lag if metrics are on


@pytest.mark.parametrize("on", [True, False])
def test_traces_switch(on: bool) -> None:
    """The traces switch turns spans on and off without affecting the other signals."""
    with capture(traces=on) as cap:
        _emit_everything(cap)
        names = {s.name for s in cap.spans()}
        if on:
            assert {"switch-span", "switch-span-2"} <= names
            assert isinstance(cap.telemetry.tracer_provider, TracerProvider)
        else:
            assert names == set()
            assert not isinstance(trace.get_tracer_provider(), TracerProvider)
            # the other signals are unaffected
            assert "switch.counter" in cap.metrics()


@pytest.mark.parametrize("on", [True, False])
def test_metrics_switch(on: bool) -> None:
    """The metrics switch turns metrics, runtime metrics included, on and off."""
    with capture(metrics=on) as cap:
        _emit_everything(cap)
        try:
            names = set(cap.metrics())
        except Exception:  # a reader never attached to a provider has nothing to give
            names = set()
        if on:
            assert {"switch.counter", "agentpress.asyncio.loop_lag", "process.memory.usage"} <= names
            assert "runtime" in cap.telemetry.integrations
        else:
            assert names == set()
            assert "runtime" not in cap.telemetry.integrations
            assert not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
            assert {s.name for s in cap.spans()} >= {"switch-span"}


@pytest.mark.parametrize("on", [True, False])
def test_logs_switch(on: bool) -> None:
    """The logs switch turns log export and the logging integration on and off."""
    with capture(logs=on) as cap:
        _emit_everything(cap)
        bodies = [str(getattr(getattr(r, "log_record", r), "body", "")) for r in cap.logs()]
        if on:
            assert "logging" in cap.telemetry.integrations  # stdlib records reach OTLP only through it
            assert any("switch log line" in b for b in bodies), bodies
        if not on:
            assert bodies == []
            assert cap.telemetry.logger_provider is None
            assert "logging" not in cap.telemetry.integrations


def test_signal_switch_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal switched off by env is off, with the env variable as its source."""
    monkeypatch.setenv("AGENTPRESS_OTEL_TRACES", "false")
    with capture() as cap:
        _emit_everything(cap)
        assert cap.spans() == []
        assert cap.telemetry.config.sources["traces"] == "AGENTPRESS_OTEL_TRACES"


@pytest.mark.parametrize(("ratio", "expect"), [(0.0, 0), (1.0, 50)])
def test_sample_ratio(ratio: float, expect: int) -> None:
    """Sample ratios 0 and 1 keep no or all traces, and children follow their parent."""
    with capture(sample_ratio=ratio) as cap:
        tracer = trace.get_tracer("ratio-test")
        for _ in range(50):
            with tracer.start_as_current_span("root"), tracer.start_as_current_span("child"):
                pass
        roots = [s for s in cap.spans() if s.name == "root"]
        assert len(roots) == expect
        # children follow their parent's decision: never a half-sampled trace
        assert len([s for s in cap.spans() if s.name == "child"]) == expect


def test_sample_ratio_half_is_roughly_half() -> None:
    """A sample ratio of 0.5 keeps about half the traces."""
    with capture(sample_ratio=0.5) as cap:
        tracer = trace.get_tracer("ratio-test")
        for _ in range(400):
            with tracer.start_as_current_span("root"):
                pass
        n = len(cap.spans())
        assert 140 <= n <= 260, n  # binomial(400, 0.5): +-6 sigma


@pytest.mark.parametrize("on", [True, False])
def test_capture_content_switch(on: bool) -> None:
    """The capture_content switch decides whether tool arguments appear in spans."""
    genai = pytest.importorskip("agentpress_otel.genai")
    with capture(capture_content=on) as cap:
        with genai.tool_call("web_search", arguments={"query": "zebra-argument-text"}) as tool:
            tool.set_result({"hits": ["zebra-result-text"]})
        with genai.llm_call(model="gpt-test", provider="openai") as call:
            call.set_input_messages([{"role": "user", "content": "zebra-prompt-text"}])
            call.set_output_messages([{"role": "assistant", "content": "zebra-completion-text"}])
        spans = cap.spans()
        logs = cap.logs()
    assert len(spans) >= 2  # the spans exist either way: only their content is switched
    dump = " ".join(str(dict(s.attributes or {})) + str([dict(e.attributes or {}) for e in s.events]) for s in spans)
    dump += " ".join(str(getattr(getattr(r, "log_record", r), "body", "")) for r in logs)
    for text in ("zebra-argument-text", "zebra-result-text", "zebra-prompt-text", "zebra-completion-text"):
        assert (text in dump) is on, (text, on)
