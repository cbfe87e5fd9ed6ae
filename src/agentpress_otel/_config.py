"""One options object, resolved with precedence argument > AGENTPRESS_OTEL_* > OTEL_* > default.

Every resolved value remembers where it came from, so ``agentpress-otel doctor`` can show it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

Protocol = Literal["grpc", "http/protobuf"]

#: Integrations ``instrument()`` knows; each can be switched off on its own.
INTEGRATIONS: tuple[str, ...] = (
    "fastapi",
    "httpx",
    "litellm",
    "redis",
    "dramatiq",
    "logging",
    "structlog",
    "slack",
    "runtime",
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An option has a value we cannot use; the message names the option and its source."""


def parse_bool(raw: str) -> bool:
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def parse_float(raw: str) -> float:
    return float(raw.strip())


def parse_int(raw: str) -> int:
    return int(raw.strip())


def parse_kv(raw: str) -> dict[str, str]:
    """Parse ``k1=v1,k2=v2`` (W3C-baggage style, as OTEL_RESOURCE_ATTRIBUTES and _HEADERS use)."""
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"expected key=value, got {part!r}")
        k, v = part.split("=", 1)
        out[unquote(k.strip())] = unquote(v.strip())
    return out


def parse_list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "argument", "AGENTPRESS_OTEL_X", "OTEL_X" or "default"


def resolve(
    name: str,
    arg: T | None,
    *,
    default: T,
    parse: Callable[[str], T],
    std_env: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """Resolve one option: argument > ``AGENTPRESS_OTEL_<NAME>`` > standard vars (in order) > default."""
    environ = os.environ if env is None else env
    if arg is not None:
        return Resolved(arg, "argument")
    for var in (f"AGENTPRESS_OTEL_{name.upper()}", *std_env):
        raw = environ.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            return Resolved(parse(raw), var)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{var}={raw!r}: {exc}") from exc
    return Resolved(default, "default")


def _parse_protocol(raw: str) -> Protocol:
    v = raw.strip().lower()
    if v == "grpc":
        return "grpc"
    if v in {"http/protobuf", "http"}:
        return "http/protobuf"
    raise ValueError("expected 'grpc' or 'http/protobuf' (http/json is not supported by the Python SDK)")


def _sampler_ratio_from_std(env: Mapping[str, str]) -> float | None:
    """Read OTEL_TRACES_SAMPLER/_ARG into a ratio; None means "always on"."""
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not sampler:
        return None
    if sampler in {"always_on", "parentbased_always_on"}:
        return 1.0
    if sampler in {"always_off", "parentbased_always_off"}:
        return 0.0
    if sampler in {"traceidratio", "parentbased_traceidratio"}:
        arg = env.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
        try:
            return float(arg)
        except ValueError as exc:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r}: not a number") from exc
    raise ConfigError(f"OTEL_TRACES_SAMPLER={sampler!r}: unsupported (use traceidratio or always_on/off)")


@dataclass(frozen=True)
class Config:
    """The effective options of one ``instrument()`` call. See docs/configuration.md."""

    service_name: str
    service_version: str
    environment: str
    service_instance_id: str
    resource_attributes: dict[str, str]
    endpoint: str
    protocol: Protocol
    headers: dict[str, str]
    traces: bool
    metrics: bool
    logs: bool
    sample_ratio: float
    integrations: frozenset[str]
    capture_content: bool
    content_max_chars: int
    attribute_max_chars: int
    excluded_urls: tuple[str, ...]
    request_id_header: str
    log_json: bool
    log_level: str
    logger_levels: dict[str, str]
    log_sample_ratio: float
    redact: bool
    slack_webhook_url: str | None
    slack_min_level: str
    grafana_url: str
    shutdown_timeout_s: float
    export_timeout_s: float
    metric_interval_s: float
    max_queue_size: int
    runtime_interval_s: float
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def enabled(self, integration: str) -> bool:
        return integration in self.integrations


def load_config(overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from ``instrument()`` arguments (``None`` = not given) and the environment."""
    environ: Mapping[str, str] = os.environ if env is None else env
    args = dict(overrides or {})
    sources: dict[str, str] = {}

    def r(name: str, default: T, parse: Callable[[str], T], std: Iterable[str] = ()) -> T:
        res = resolve(name, args.get(name), default=default, parse=parse, std_env=std, env=environ)
        sources[name] = res.source
        return res.value  # type: ignore[no-any-return]

    resource_attrs = parse_kv(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    if (ours := environ.get("AGENTPRESS_OTEL_RESOURCE_ATTRIBUTES")) is not None:
        resource_attrs.update(parse_kv(ours))
    if args.get("resource_attributes"):
        resource_attrs.update({str(k): str(v) for k, v in args["resource_attributes"].items()})

    service_name = r(
        "service_name", resource_attrs.get("service.name", "unknown_service:python"), str, ["OTEL_SERVICE_NAME"]
    )
    protocol: Protocol = r("protocol", "grpc", _parse_protocol, ["OTEL_EXPORTER_OTLP_PROTOCOL"])
    default_endpoint = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
    endpoint = r("endpoint", default_endpoint, str, ["OTEL_EXPORTER_OTLP_ENDPOINT"])

    std_ratio = _sampler_ratio_from_std(environ)
    sample_ratio = r("sample_ratio", 1.0 if std_ratio is None else std_ratio, parse_float)
    if std_ratio is not None and sources["sample_ratio"] == "default":
        sources["sample_ratio"] = "OTEL_TRACES_SAMPLER"
    if not 0.0 <= sample_ratio <= 1.0:
        raise ConfigError(f"sample_ratio={sample_ratio!r} ({sources['sample_ratio']}): must be within [0, 1]")

    disabled: set[str] = set(r("disabled_integrations", tuple[str, ...](), parse_list))
    wanted = r("integrations", INTEGRATIONS, parse_list)
    unknown = (set(wanted) | disabled) - set(INTEGRATIONS)
    if unknown:
        raise ConfigError(f"unknown integrations {sorted(unknown)}; known: {', '.join(INTEGRATIONS)}")

    capture = r(
        "capture_content",
        False,
        _parse_capture,
        ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"],
    )
    slack_url = r("slack_webhook_url", "", str) or None

    cfg = Config(
        service_name=service_name,
        service_version=r("service_version", resource_attrs.get("service.version", "0.0.0"), str),
        environment=r(
            "environment",
            resource_attrs.get(
                "deployment.environment.name", resource_attrs.get("deployment.environment", "development")
            ),
            str,
        ),
        service_instance_id=r("service_instance_id", resource_attrs.get("service.instance.id", ""), str),
        resource_attributes=resource_attrs,
        endpoint=endpoint,
        protocol=protocol,
        headers=r("headers", {}, parse_kv, ["OTEL_EXPORTER_OTLP_HEADERS"]),
        traces=r("traces", True, parse_bool),
        metrics=r("metrics", True, parse_bool),
        logs=r("logs", True, parse_bool),
        sample_ratio=sample_ratio,
        integrations=frozenset(wanted) - disabled,
        capture_content=capture,
        content_max_chars=r("content_max_chars", 16_384, parse_int),
        attribute_max_chars=r("attribute_max_chars", 8_192, parse_int, ["OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"]),
        excluded_urls=r(
            "excluded_urls",
            ("/health", "/healthz", "/metrics", "/readyz", "/livez", "/api/health"),
            parse_list,
            ["OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"],
        ),
        request_id_header=r("request_id_header", "X-Request-ID", str),
        log_json=r("log_json", False, parse_bool),
        log_level=r("log_level", "INFO", lambda s: s.strip().upper()),
        logger_levels=r("logger_levels", {}, parse_kv),
        log_sample_ratio=r("log_sample_ratio", 1.0, parse_float),
        redact=r("redact", True, parse_bool),
        slack_webhook_url=slack_url,
        slack_min_level=r("slack_min_level", "ERROR", lambda s: s.strip().upper()),
        grafana_url=r("grafana_url", "http://localhost:3000", str),
        shutdown_timeout_s=r("shutdown_timeout_s", 5.0, parse_float),
        export_timeout_s=r(
            "export_timeout_s",
            10.0,
            lambda s: float(s) / 1000.0 if s.strip().isdigit() else float(s),
            ["OTEL_EXPORTER_OTLP_TIMEOUT"],
        ),
        metric_interval_s=r(
            "metric_interval_s",
            30.0,
            lambda s: float(s) / 1000.0,
            ["OTEL_METRIC_EXPORT_INTERVAL"],
        ),
        max_queue_size=r("max_queue_size", 2048, parse_int, ["OTEL_BSP_MAX_QUEUE_SIZE"]),
        runtime_interval_s=r("runtime_interval_s", 15.0, parse_float),
        sources=sources,
    )
    if sources["metric_interval_s"] == "AGENTPRESS_OTEL_METRIC_INTERVAL_S":
        # Ours is in seconds; the standard variable is in milliseconds.
        object.__setattr__(cfg, "metric_interval_s", cfg.metric_interval_s * 1000.0)
    _validate(cfg)
    return cfg


def _parse_capture(raw: str) -> bool:
    v = raw.strip().upper()
    # util-genai uses NO_CONTENT / SPAN_ONLY / EVENT_ONLY / SPAN_AND_EVENT; older instrumentations use true/false.
    if v in {"SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"}:
        return True
    if v == "NO_CONTENT":
        return False
    return parse_bool(raw)


def _validate(cfg: Config) -> None:
    if cfg.shutdown_timeout_s <= 0:
        raise ConfigError("shutdown_timeout_s must be > 0")
    if cfg.max_queue_size < 1:
        raise ConfigError("max_queue_size must be >= 1")
    if cfg.content_max_chars < 0 or cfg.attribute_max_chars < 16:
        raise ConfigError("content_max_chars must be >= 0 and attribute_max_chars >= 16")
    if not 0.0 <= cfg.log_sample_ratio <= 1.0:
        raise ConfigError("log_sample_ratio must be within [0, 1]")
    if not cfg.endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint {cfg.endpoint!r} must start with http:// or https://")


def default_instance_id() -> str:
    """A fresh id per process (and per forked child): hostname-pid-random."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
