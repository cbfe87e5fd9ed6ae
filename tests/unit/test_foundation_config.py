"""Config precedence: argument > AGENTPRESS_OTEL_* > OTEL_* > default, with the source of each value."""

from __future__ import annotations

import warnings

import pytest

from agentpress_otel._config import DEFAULT_EXCLUDED_URLS, INTEGRATIONS, ConfigError, load_config


def test_defaults() -> None:
    """With no arguments and no environment, the configuration has the documented defaults."""
    cfg = load_config({}, env={})
    assert cfg.service_name == "unknown_service:python"
    assert cfg.protocol == "grpc"
    assert cfg.endpoint == "http://localhost:4317"
    assert cfg.sample_ratio == 1.0
    assert cfg.traces and cfg.metrics and cfg.logs
    assert cfg.capture_content is False
    assert cfg.sources["service_name"] == "default"


def test_precedence_argument_ours_standard_default() -> None:
    """Precedence is argument, then AGENTPRESS_OTEL_*, then OTEL_*, then default, and the source is recorded."""
    env = {"OTEL_SERVICE_NAME": "std", "AGENTPRESS_OTEL_SERVICE_NAME": "ours"}
    assert load_config({}, env=env).service_name == "ours"
    assert load_config({}, env=env).sources["service_name"] == "AGENTPRESS_OTEL_SERVICE_NAME"
    assert load_config({"service_name": "arg"}, env=env).service_name == "arg"
    assert load_config({"service_name": "arg"}, env=env).sources["service_name"] == "argument"
    assert load_config({}, env={"OTEL_SERVICE_NAME": "std"}).service_name == "std"


def test_standard_variables() -> None:
    """The standard OTEL_* variables set protocol, endpoint, headers, version, environment and resource attributes."""
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
    """AGENTPRESS_OTEL_SAMPLE_RATIO beats OTEL_TRACES_SAMPLER."""
    env = {"OTEL_TRACES_SAMPLER": "always_off", "AGENTPRESS_OTEL_SAMPLE_RATIO": "0.5"}
    assert load_config({}, env=env).sample_ratio == 0.5


def test_integration_switches() -> None:
    """Integrations can be disabled by env or limited to an explicit list."""
    cfg = load_config({}, env={"AGENTPRESS_OTEL_DISABLED_INTEGRATIONS": "litellm, redis"})
    assert not cfg.enabled("litellm") and not cfg.enabled("redis") and cfg.enabled("fastapi")
    cfg = load_config({"integrations": ["fastapi"]}, env={})
    assert cfg.integrations == frozenset({"fastapi"})


@pytest.mark.parametrize(
    ("env", "var", "option", "expected", "source"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "protocol", "grpc", "default"),
        ({"AGENTPRESS_OTEL_SAMPLE_RATIO": "2"}, "AGENTPRESS_OTEL_SAMPLE_RATIO", "sample_ratio", 1.0, "default"),
        ({"AGENTPRESS_OTEL_SAMPLE_RATIO": "abc"}, "AGENTPRESS_OTEL_SAMPLE_RATIO", "sample_ratio", 1.0, "default"),
        ({"AGENTPRESS_OTEL_TRACES": "maybe"}, "AGENTPRESS_OTEL_TRACES", "traces", True, "default"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER", "sample_ratio", 1.0, "default"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "zz"}, "OTEL_TRACES_SAMPLER_ARG",
         "sample_ratio", 1.0, "OTEL_TRACES_SAMPLER"),
        ({"AGENTPRESS_OTEL_INTEGRATIONS": "fastapi,nope"}, "AGENTPRESS_OTEL_INTEGRATIONS", "integrations",
         frozenset({"fastapi"}), "AGENTPRESS_OTEL_INTEGRATIONS"),
        ({"AGENTPRESS_OTEL_DISABLED_INTEGRATIONS": "redsi"}, "AGENTPRESS_OTEL_DISABLED_INTEGRATIONS",
         "integrations", frozenset(INTEGRATIONS), "default"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "endpoint",
         "http://localhost:4317", "default"),
        ({"AGENTPRESS_OTEL_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
         "AGENTPRESS_OTEL_ENDPOINT", "endpoint", "http://c:4317", "OTEL_EXPORTER_OTLP_ENDPOINT"),  # next source
        ({"OTEL_EXPORTER_OTLP_HEADERS": "garbage-no-equals"}, "OTEL_EXPORTER_OTLP_HEADERS", "headers", {}, "default"),
        ({"AGENTPRESS_OTEL_SHUTDOWN_TIMEOUT_S": "nan"}, "AGENTPRESS_OTEL_SHUTDOWN_TIMEOUT_S", "shutdown_timeout_s",
         5.0, "default"),
        ({"AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": "0", "OTEL_EXPORTER_OTLP_TIMEOUT": "3000"},
         "AGENTPRESS_OTEL_EXPORT_TIMEOUT_S", "export_timeout_s", 3.0, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "-5"}, "OTEL_METRIC_EXPORT_INTERVAL", "metric_interval_s", 30.0, "default"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE", "max_queue_size", 2048, "default"),
        ({"OTEL_PYTHON_EXCLUDED_URLS": "health(,x"}, "OTEL_PYTHON_EXCLUDED_URLS", "excluded_urls",
         DEFAULT_EXCLUDED_URLS, "default"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY", "schedule_delay_s", 1.0, "default"),
    ],
)
def test_bad_environment_values_warn_and_fall_back(
    env: dict[str, str], var: str, option: str, expected: object, source: str
) -> None:
    """An operator's typo never takes the app down: one warning naming the variable and its value, the
    next source or the default, and the message kept for ``doctor``."""
    with pytest.warns(RuntimeWarning, match=var):
        cfg = load_config({}, env=env)
    assert getattr(cfg, option) == expected
    assert cfg.sources[option] == source
    assert len(cfg.config_warnings) == 1
    assert var in cfg.config_warnings[0] and repr(env[var]) in cfg.config_warnings[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"protocol": "http/json"}, "protocol"),
        ({"sample_ratio": 2.0}, "sample_ratio"),
        ({"integrations": ["fastapi", "nope"]}, "unknown integrations"),
        ({"disabled_integrations": ["redsi"]}, "unknown integrations"),
        ({"endpoint": "localhost:4317"}, "must start with http"),
        ({"shutdown_timeout_s": float("nan")}, "shutdown_timeout_s"),
        ({"export_timeout_s": 0}, "export_timeout_s"),
        ({"max_queue_size": 0}, "max_queue_size"),
        ({"excluded_urls": ["health("]}, "excluded_urls"),
        ({"internal_hosts": ["a b"]}, "internal_hosts"),
    ],
)
def test_bad_arguments_raise_config_error(args: dict[str, object], message: str) -> None:
    """A bad explicit argument is a programmer error, even when the environment is fine."""
    with pytest.raises(ConfigError, match=message):
        load_config(args, env={})


@pytest.mark.parametrize(
    ("args", "env", "ratio"),
    [
        ({"sample_ratio": 0.5}, {"OTEL_TRACES_SAMPLER": "bogus"}, 0.5),
        ({}, {"AGENTPRESS_OTEL_SAMPLE_RATIO": "0.2", "OTEL_TRACES_SAMPLER": "traceidratio",
              "OTEL_TRACES_SAMPLER_ARG": "zz"}, 0.2),
        ({"sample_ratio": 0.5}, {"AGENTPRESS_OTEL_SAMPLE_RATIO": "0.2", "OTEL_TRACES_SAMPLER": "always_off"}, 0.5),
    ],
)
def test_explicit_ratio_beats_a_bad_standard_sampler(
    args: dict[str, object], env: dict[str, str], ratio: float
) -> None:
    """The standard sampler variables are read only when neither the argument nor ours is set."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = load_config(args, env=env)
    assert cfg.sample_ratio == ratio
    assert cfg.parent_based_sampling is True
    assert cfg.config_warnings == ()


@pytest.mark.parametrize(
    ("sampler", "arg", "ratio", "parent_based"),
    [
        ("always_on", None, 1.0, False),
        ("always_off", None, 0.0, False),
        ("traceidratio", "0.25", 0.25, False),
        ("traceidratio", None, 1.0, False),
        ("parentbased_always_on", None, 1.0, True),
        ("parentbased_always_off", None, 0.0, True),
        ("parentbased_traceidratio", "0.1", 0.1, True),
    ],
)
def test_standard_samplers_are_parent_based_only_when_named_so(
    sampler: str, arg: str | None, ratio: float, parent_based: bool
) -> None:
    """Each standard sampler name maps to the right ratio, parent-based only when its name says so."""
    env = {"OTEL_TRACES_SAMPLER": sampler, **({"OTEL_TRACES_SAMPLER_ARG": arg} if arg else {})}
    cfg = load_config({}, env=env)
    assert (cfg.sample_ratio, cfg.parent_based_sampling) == (ratio, parent_based)
    assert load_config({}, env={"AGENTPRESS_OTEL_SAMPLE_RATIO": "0.3"}).parent_based_sampling is True


def test_malformed_resource_attributes_are_skipped_not_fatal() -> None:
    """Malformed resource attribute entries are skipped with a warning each, the valid ones kept."""
    env = {
        "OTEL_RESOURCE_ATTRIBUTES": "novalue,team=agents,=x",
        "AGENTPRESS_OTEL_RESOURCE_ATTRIBUTES": "tier=gold,oops",
    }
    with pytest.warns(RuntimeWarning, match="OTEL_RESOURCE_ATTRIBUTES"):
        cfg = load_config({}, env=env)
    assert cfg.resource_attributes == {"team": "agents", "tier": "gold"}
    assert len(cfg.config_warnings) == 3
    assert any("'novalue'" in w for w in cfg.config_warnings)


def test_schedule_delays_and_internal_hosts() -> None:
    """Schedule delays default to 1 s and follow their variables; internal hosts are parsed from env."""
    cfg = load_config({}, env={})
    assert (cfg.schedule_delay_s, cfg.log_schedule_delay_s) == (1.0, 1.0)
    cfg = load_config({}, env={"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "300"})
    assert (cfg.schedule_delay_s, cfg.log_schedule_delay_s) == (0.2, 0.3)
    assert cfg.sources["schedule_delay_s"] == "OTEL_BSP_SCHEDULE_DELAY"
    assert cfg.sources["log_schedule_delay_s"] == "OTEL_BLRP_SCHEDULE_DELAY"
    cfg = load_config({}, env={"AGENTPRESS_OTEL_SCHEDULE_DELAY_S": "2", "OTEL_BSP_SCHEDULE_DELAY": "200"})
    assert (cfg.schedule_delay_s, cfg.log_schedule_delay_s) == (2.0, 2.0)
    cfg = load_config({}, env={"AGENTPRESS_OTEL_INTERNAL_HOSTS": "corp.example, *.svc.example ,"})
    assert cfg.internal_hosts == ("corp.example", ".svc.example")
    assert cfg.trust_baggage_user_id is False


@pytest.mark.parametrize(
    ("env", "export_timeout_s", "metric_interval_s"),
    [
        ({"AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": "5"}, 5.0, 30.0),  # ours: seconds, integer or not
        ({"AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": "2.5"}, 2.5, 30.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "5000"}, 5.0, 30.0),  # standard: milliseconds, integer or not
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "7500.0"}, 7.5, 30.0),
        ({"AGENTPRESS_OTEL_METRIC_INTERVAL_S": "1"}, 10.0, 1.0),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "15000"}, 10.0, 15.0),
        ({"AGENTPRESS_OTEL_METRIC_INTERVAL_S": "2", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}, 10.0, 2.0),
    ],
)
def test_time_units_per_variable(env: dict[str, str], export_timeout_s: float, metric_interval_s: float) -> None:
    """Each time variable is read in its documented unit (milliseconds or seconds)."""
    cfg = load_config({}, env=env)
    assert cfg.export_timeout_s == pytest.approx(export_timeout_s)
    assert cfg.metric_interval_s == pytest.approx(metric_interval_s)
