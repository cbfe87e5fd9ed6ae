"""Semantic-convention names of our own telemetry: tool spans inside agents, the GenAI opt-in switch, the
resource. Expected values come from the conventions (tests/semconv_rules.py), not from our output."""

from __future__ import annotations

import datetime
import platform
import uuid
from collections.abc import Iterator

import psutil
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint

from agentpress_otel import _providers, _setup
from agentpress_otel._config import load_config
from agentpress_otel.genai import _semconv, agent_run, llm_call, tool_call
from agentpress_otel.testing import Kit, make_kit
from semconv_rules import ENUMS, GENAI_METRICS, METRICS


def _metrics(kit: Kit) -> dict[str, tuple[str, list[dict[str, object]]]]:
    """name -> (unit, point attribute dicts)."""
    out: dict[str, tuple[str, list[dict[str, object]]]] = {}
    data = kit.metric_reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = (m.unit, [dict(p.attributes or {}) for p in m.data.data_points])
    return out


def test_tool_inside_an_agent_names_it_on_span_and_metric(kit: Kit) -> None:
    """gen_ai.agent.name is conditionally required on execute_tool spans and on gen_ai.execute_tool.duration
    when the tool runs inside an agent (gen-ai-agent-spans.md, gen-ai-metrics.md)."""
    with agent_run("planner", thread_id="t-1"), tool_call("web_search", call_id="c1"):
        pass
    with tool_call("standalone"):
        pass
    spans = {s.name: dict(s.attributes or {}) for s in kit.spans()}
    assert spans["execute_tool web_search"]["gen_ai.agent.name"] == "planner"
    assert "gen_ai.agent.name" not in spans["execute_tool standalone"]
    points = {str(a["gen_ai.tool.name"]): a for a in _metrics(kit)["gen_ai.execute_tool.duration"][1]}
    assert points["web_search"]["gen_ai.agent.name"] == "planner"
    assert "gen_ai.agent.name" not in points["standalone"]


@pytest.fixture
def opt_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    if request.param is not None:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", request.param)
    else:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    with make_kit() as k:
        yield k


def _one_call() -> None:
    with llm_call(model="gpt-5-mini", provider="openai", server_address="api.openai.com", server_port=443,
                  stream=True) as call:
        call.chunk()
        call.chunk()
        call.set_usage(input_tokens=120, output_tokens=30, cache_read_tokens=100, cache_write_tokens=20,
                       reasoning_tokens=10)
        call.set_response(model="gpt-5-mini-2025-08-07", finish_reasons=["stop"])


# The names each convention set defines for inference metrics (gen-ai-metrics.md at Baseline A; later
# main's token-metrics.yaml and client-inference.md), written here, not taken from our names module.
BASELINE = {"gen_ai.client.token.usage", "gen_ai.client.operation.duration",
            "gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.operation.time_per_output_chunk"}
LATEST = {"gen_ai.client.inference.duration", "gen_ai.client.inference.time_to_first_chunk",
          "gen_ai.client.inference.time_per_output_chunk", "gen_ai.client.inference.usage.input_tokens",
          "gen_ai.client.inference.usage.output_tokens", "gen_ai.client.inference.usage.cache_read.input_tokens",
          "gen_ai.client.inference.usage.cache_write.input_tokens",
          "gen_ai.client.inference.usage.reasoning.output_tokens",
          "gen_ai.client.inference.operation.input_tokens", "gen_ai.client.inference.operation.output_tokens"}


@pytest.mark.parametrize("opt_in", [None, "http"], indirect=True)
def test_default_is_baseline_a(opt_in: Kit) -> None:
    """By default GenAI telemetry uses the baseline names, units and schema URL."""
    _one_call()
    got = _metrics(opt_in)
    sent = {n for n, (_, pts) in got.items() if pts}
    assert sent >= BASELINE and not (LATEST & sent)
    (span,) = opt_in.spans("chat")
    a = dict(span.attributes or {})
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 20 and "gen_ai.usage.cache_write.input_tokens" not in a
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == "https://opentelemetry.io/schemas/gen-ai-dev/1.42.0-dev"
    for name in BASELINE:
        assert (got[name][0],) == (METRICS[name][1],)  # unit from the published package


@pytest.mark.parametrize("opt_in", ["http, gen_ai_latest_experimental"], indirect=True)
def test_opt_in_switches_to_the_latest_names(opt_in: Kit) -> None:
    """The semconv opt-in switches to the latest GenAI metric names, units and attributes."""
    _one_call()
    got = _metrics(opt_in)
    sent = {n for n, (_, pts) in got.items() if pts}
    assert sent >= LATEST and not (BASELINE & sent), sorted(sent)
    for name in LATEST:
        assert got[name][0] == GENAI_METRICS[name][1]
    usage_in = got["gen_ai.client.inference.usage.input_tokens"][1]
    assert [p["gen_ai.token.modality"] for p in usage_in] == ["unknown"]
    assert usage_in[0]["server.port"] == 443 and "gen_ai.token.type" not in usage_in[0]
    data = opt_in.metric_reader.get_metrics_data()
    assert data is not None
    values = {m.name: m.data.data_points[0] for rm in data.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics}
    assert values["gen_ai.client.inference.usage.cache_read.input_tokens"].value == 100
    assert values["gen_ai.client.inference.usage.reasoning.output_tokens"].value == 10
    hist = values["gen_ai.client.inference.operation.output_tokens"]
    assert isinstance(hist, HistogramDataPoint) and hist.sum == 30
    (span,) = opt_in.spans("chat")
    a = dict(span.attributes or {})
    assert a["gen_ai.usage.cache_write.input_tokens"] == 20 and "gen_ai.usage.cache_creation.input_tokens" not in a
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == _semconv.SCHEMA_URL_LATEST


def test_opt_in_parsing() -> None:
    """The opt-in value is parsed as a comma list matching the exact GenAI token."""
    assert _semconv.latest_requested("database, GEN_AI_LATEST_EXPERIMENTAL")
    assert not _semconv.latest_requested("http,gen_ai_latest_experimental/dup_not_defined")
    assert not _semconv.latest_requested("")


def test_resource_follows_the_registry() -> None:
    """The resource's host.arch, instance id and creation time follow the semconv registry."""
    res = dict(_providers.build_resource(load_config({"service_name": "svc"}, env={})).attributes)
    assert res["host.arch"] in ENUMS["host.arch"]
    if platform.machine() == "x86_64":
        assert res["host.arch"] == "amd64"
    assert uuid.UUID(str(res["service.instance.id"])).version == 4
    created = datetime.datetime.fromisoformat(str(res["process.creation.time"]))
    expected = datetime.datetime.fromtimestamp(psutil.Process().create_time(), datetime.UTC)
    assert abs((created - expected).total_seconds()) < 1


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"),
                                               ("arm64", "arm64"), ("armv7l", "arm32"), ("i686", "x86"),
                                               ("ppc64le", "ppc64"), ("s390x", "s390x")])
def test_host_arch_mapping(machine: str, arch: str) -> None:
    """Machine names map to registry host.arch values."""
    assert _providers.host_arch(machine) == arch and arch in ENUMS["host.arch"]


@pytest.mark.parametrize(("before", "after"), [
    (None, "http,database"),
    ("gen_ai_latest_experimental", "gen_ai_latest_experimental,http,database"),
    ("http/dup", "http/dup,database"),
    ("database,http", "database,http"),
])
def test_stable_http_and_database_conventions_are_requested(monkeypatch: pytest.MonkeyPatch, before: str | None,
                                                            after: str) -> None:
    """Stock instrumentations read OTEL_SEMCONV_STABILITY_OPT_IN once: a value naming only another domain must
    not leave httpx/redis on deprecated names; a mode the user chose for a domain is kept."""
    if before is None:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    else:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", before)
    _setup.opt_in_stable_conventions()
    import os

    assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == after
    assert _semconv.latest_requested() == ("gen_ai_latest_experimental" in after)


def test_modes_frozen_on_defaults_by_an_earlier_instrumentation_are_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An app that enabled a stock instrumentation before instrument() froze the process-wide modes on the
    deprecated defaults; the instrumentations we enable afterwards must still get the stable ones."""
    from opentelemetry.instrumentation._semconv import (
        _OpenTelemetrySemanticConventionStability as Stability,
    )
    from opentelemetry.instrumentation._semconv import _OpenTelemetryStabilitySignalType as Signal
    from opentelemetry.instrumentation._semconv import _StabilityMode as Mode

    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    with Stability._lock:
        Stability._initialized = False
    Stability._initialize()  # what FastAPIInstrumentor().instrument() does first
    assert Stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING[Signal.HTTP] == Mode.DEFAULT
    _setup.opt_in_stable_conventions()
    modes = Stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING
    assert (modes[Signal.HTTP], modes[Signal.DATABASE]) == (Mode.HTTP, Mode.DATABASE)
