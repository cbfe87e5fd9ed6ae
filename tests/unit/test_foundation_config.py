"""Config precedence: argument > AGENTPRESS_OTEL_* > OTEL_* > default, with the source of each value."""

from __future__ import annotations

import pytest

from agentpress_otel._config import ConfigError, load_config


def test_defaults() -> None:
    cfg = load_config({}, env={})
    assert cfg.service_name == "unknown_service:python"
    assert cfg.protocol == "grpc"
    assert cfg.endpoint == "http://localhost:4317"
    assert cfg.sample_ratio == 1.0
    assert cfg.traces and cfg.metrics and cfg.logs
    assert cfg.capture_content is False
    assert cfg.sources["service_name"] == "default"


def test_precedence_argument_ours_standard_default() -> None:
    env = {"OTEL_SERVICE_NAME": "std", "AGENTPRESS_OTEL_SERVICE_NAME": "ours"}
    assert load_config({}, env=env).service_name == "ours"
    assert load_config({}, env=env).sources["service_name"] == "AGENTPRESS_OTEL_SERVICE_NAME"
    assert load_config({"service_name": "arg"}, env=env).service_name == "arg"
    assert load_config({"service_name": "arg"}, env=env).sources["service_name"] == "argument"
    assert load_config({}, env={"OTEL_SERVICE_NAME": "std"}).service_name == "std"


def test_standard_variables() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20x,x-tenant=a",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=1.2.3,deployment.environment.name=prod,team=agents",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
    }
    cfg = load_config({}, env=env)
    assert cfg.protocol == "http/protobuf"
    assert cfg.endpoint == "http://localhost:4318"
    assert cfg.headers == {"authorization": "Bearer x", "x-tenant": "a"}
    assert cfg.service_version == "1.2.3"
    assert cfg.environment == "prod"
    assert cfg.resource_attributes["team"] == "agents"
    assert cfg.sample_ratio == 0.25
    assert cfg.sources["sample_ratio"] == "OTEL_TRACES_SAMPLER"
    assert cfg.capture_content is True


def test_ours_beats_standard_sampler() -> None:
    env = {"OTEL_TRACES_SAMPLER": "always_off", "AGENTPRESS_OTEL_SAMPLE_RATIO": "0.5"}
    assert load_config({}, env=env).sample_ratio == 0.5


def test_integration_switches() -> None:
    cfg = load_config({}, env={"AGENTPRESS_OTEL_DISABLED_INTEGRATIONS": "litellm, redis"})
    assert not cfg.enabled("litellm") and not cfg.enabled("redis") and cfg.enabled("fastapi")
    cfg = load_config({"integrations": ["fastapi"]}, env={})
    assert cfg.integrations == frozenset({"fastapi"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"AGENTPRESS_OTEL_SAMPLE_RATIO": "2"}, "sample_ratio"),
        ({"AGENTPRESS_OTEL_TRACES": "maybe"}, "AGENTPRESS_OTEL_TRACES"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
        ({"AGENTPRESS_OTEL_INTEGRATIONS": "fastapi,nope"}, "unknown integrations"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317"}, "must start with http"),
    ],
)
def test_bad_values_name_the_option(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({}, env=env)
