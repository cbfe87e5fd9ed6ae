"""One options object, resolved with precedence argument > AGENTPRESS_OTEL_* > OTEL_* > default.

Every resolved value remembers where it came from, so ``agentpress-otel doctor`` can show it.

A bad *argument* is a programmer error: :class:`ConfigError`. A bad *environment* value is an operator's
typo that must not take the app down: it is ignored with one ``RuntimeWarning`` naming the variable and
its value, the next source (or the default) is used, and the message is kept in
``Config.config_warnings`` for ``agentpress-otel doctor``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    "agentpress",
    "logging",
    "structlog",
    "slack",
    "runtime",
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An ``instrument()`` argument has a value we cannot use; the message names the option.

    Raised for arguments only (a programmer error). A bad environment variable is ignored with a
    warning instead and listed in ``Config.config_warnings``.

    Example::

        try:
            agentpress_otel.instrument(app, sample_ratio=2.0)
        except agentpress_otel.ConfigError as exc:
            print(exc)  # sample_ratio=2.0 (argument): must be within [0, 1]
    """


def parse_bool(raw: str) -> bool:
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def parse_float(raw: str) -> float:
    v = float(raw.strip())
    if not math.isfinite(v):
        raise ValueError("expected a finite number")
    return v


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
    std_parse: Callable[[str], T] | None = None,
    env: Mapping[str, str] | None = None,
    validate: Callable[[Any], Any] | None = None,
    problems: list[str] | None = None,
) -> Resolved:
    """Resolve one option: argument > ``AGENTPRESS_OTEL_<NAME>`` > standard vars (in order) > default.

    ``std_parse`` reads the standard variables when their unit differs from ours (milliseconds vs seconds).
    ``validate`` checks (and may normalise) a value from an argument or a variable, raising ``ValueError``.
    A bad argument raises :class:`ConfigError`. A bad variable raises too when ``problems`` is ``None``;
    otherwise it is skipped (the next source wins) and a message is appended to ``problems``.
    """
    environ = os.environ if env is None else env
    if arg is not None:
        if validate is not None:
            try:
                arg = validate(arg)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{name}={arg!r} (argument): {exc}") from exc
        return Resolved(arg, "argument")
    ours = f"AGENTPRESS_OTEL_{name.upper()}"
    bad: list[str] = []
    result = Resolved(default, "default")
    for var in (ours, *std_env):
        raw = environ.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = (parse if var == ours or std_parse is None else std_parse)(raw)
            if validate is not None:
                value = validate(value)
        except (ValueError, TypeError) as exc:
            if problems is None:
                raise ConfigError(f"{var}={raw!r}: {exc}") from exc
            bad.append(f"{var}={raw!r} ignored ({exc})")
            continue
        result = Resolved(value, var)
        break
    for b in bad:
        assert problems is not None
        problems.append(f"{b}; using {name}={result.value!r} from {result.source}")
    return result


def _parse_protocol(raw: str) -> Protocol:
    v = raw.strip().lower()
    if v == "grpc":
        return "grpc"
    if v in {"http/protobuf", "http"}:
        return "http/protobuf"
    raise ValueError("expected 'grpc' or 'http/protobuf' (http/json is not supported by the Python SDK)")


def _sampler_from_std(env: Mapping[str, str], problems: list[str]) -> tuple[float, bool] | None:
    """``(ratio, parent_based)`` from OTEL_TRACES_SAMPLER/_ARG, as the SDK reads them; None when unset.

    Only the ``parentbased_*`` samplers follow the parent's decision. Like the SDK, an unsupported
    sampler falls back to the default (parent-based, always on) and a bad ratio to 1.0, with a warning.
    """
    raw = env.get("OTEL_TRACES_SAMPLER", "")
    sampler = raw.strip().lower()
    if not sampler:
        return None
    parent_based = sampler.startswith("parentbased_")
    base = sampler.removeprefix("parentbased_")
    if base == "always_on":
        return 1.0, parent_based
    if base == "always_off":
        return 0.0, parent_based
    if base == "traceidratio":
        arg = env.get("OTEL_TRACES_SAMPLER_ARG", "")
        if not arg.strip():
            return 1.0, parent_based
        try:
            return _unit_interval(parse_float(arg)), parent_based
        except ValueError as exc:
            problems.append(f"OTEL_TRACES_SAMPLER_ARG={arg!r} ignored ({exc}); using sample_ratio=1.0")
            return 1.0, parent_based
    problems.append(
        f"OTEL_TRACES_SAMPLER={raw!r} ignored (supported: always_on, always_off, traceidratio and their "
        "parentbased_ forms); using the default, parent-based sample_ratio=1.0"
    )
    return None


def _unit_interval(v: float) -> float:
    v = float(v)
    if not 0.0 <= v <= 1.0:
        raise ValueError("must be within [0, 1]")
    return v


def _positive(v: float) -> float:
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        raise ValueError("must be a finite number > 0")
    return v


def _at_least(n: int) -> Callable[[int], int]:
    def check(v: int) -> int:
        if int(v) != v or v < n:
            raise ValueError(f"must be an integer >= {n}")
        return int(v)

    return check


def _check_endpoint(v: str) -> str:
    if not str(v).startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return str(v)


def _check_patterns(v: str | Iterable[str]) -> tuple[str, ...]:
    """URL exclusion patterns: regular expressions (searched in the request path) that must compile."""
    pats = parse_list(v) if isinstance(v, str) else tuple(str(p) for p in v)
    for p in pats:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{p!r} is not a valid regular expression: {exc}") from None
    return pats


def _check_hosts(v: str | Iterable[str]) -> tuple[str, ...]:
    """Host names or suffixes, lower case; ``*.example.com`` is the same as ``.example.com``."""
    hosts = parse_list(v) if isinstance(v, str) else tuple(str(h).strip() for h in v if str(h).strip())
    out = []
    for h in hosts:
        h = h.lower()
        if h.startswith("*."):
            h = h[1:]
        if not h or "/" in h or " " in h:
            raise ValueError(f"{h!r} is not a host name or suffix")
        out.append(h)
    return tuple(out)


def _check_level(level: Any) -> Any:
    """One level: a name (``DEBUG`` ... ``CRITICAL``, ``WARN``, ``FATAL``, ``TRACE``, any case) or a number.
    Mirrors ``logs._levels.parse_level`` (not imported: the config stays free of the logs package), so a
    typo is reported here, not later as a silently skipped integration."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    s = str(level).strip().upper()
    if not (s.isdigit() or s in ("WARN", "FATAL", "TRACE") or isinstance(logging.getLevelName(s), int)):
        raise ValueError(f"{level!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return s


def _check_logger_levels(v: Mapping[str, Any]) -> dict[str, Any]:
    """``{"httpx": "WARNING", ...}``: every level checked by :func:`_check_level`."""
    if not isinstance(v, Mapping):
        raise TypeError("expected a mapping of logger name to level")
    out: dict[str, Any] = {}
    for name, level in v.items():
        try:
            out[str(name)] = _check_level(level)
        except ValueError as exc:
            raise ValueError(f"logger {name!r}: {exc}") from None
    return out


class _Secret(str):
    """A string shown as ``***`` by ``str()``/``repr()`` (``agentpress-otel doctor`` prints options with
    ``str()``); the value itself is unchanged."""

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "'***'"


def _check_hash_key(v: str) -> _Secret:
    # Tags are 16 bits of an HMAC: with a short, guessable key a low-entropy secret could be confirmed
    # from its tag. The redaction engine applies the same minimum to the variable it reads.
    if len(str(v)) < 16:
        raise ValueError("must be at least 16 characters (use a random value, shared by the services)")
    return _Secret(str(v))


def _names(v: str | Iterable[str]) -> tuple[str, ...]:
    names = parse_list(v) if isinstance(v, str) else tuple(v)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ValueError(f"integration names must be strings, got {bad!r}")
    return names


def _parse_attrs_lenient(raw: str, var: str, problems: list[str]) -> dict[str, str]:
    """``k=v,...`` like :func:`parse_kv`, but a malformed entry is skipped with a warning (as the SDK does)."""
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            problems.append(f"{var}: malformed entry {part.strip()!r} ignored (expected key=value)")
            continue
        out[unquote(k.strip())] = unquote(v.strip())
    return out


#: Paths that get no server span by default: anchored, so only these exact paths (trailing ``/`` allowed).
DEFAULT_EXCLUDED_URLS: tuple[str, ...] = (
    "^/health/?$",
    "^/healthz/?$",
    "^/metrics/?$",
    "^/readyz/?$",
    "^/livez/?$",
    "^/api/health/?$",
)


@dataclass(frozen=True)
class Config:
    """The effective options of one ``instrument()`` call. See docs/configuration.md.

    ``sources`` says where each value came from (``argument``, a variable's name, or ``default``);
    ``config_warnings`` lists environment values that were ignored because they were invalid.

    Example::

        cfg = agentpress_otel.instrument(app, service_name="agentpress-api").config
        cfg.sample_ratio, cfg.sources["sample_ratio"]  # (1.0, "default")
        cfg.enabled("redis")                            # True unless switched off
        cfg.config_warnings                             # () when every variable was usable
    """

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
    #: Batch export delays (spans / log records), seconds.
    schedule_delay_s: float = 1.0
    log_schedule_delay_s: float = 1.0
    #: Log messages (bodies) are cut to this many characters before they are queued.
    log_max_chars: int = 16_384
    #: Hosts (suffixes) besides loopback/private addresses that receive our id baggage entries.
    internal_hosts: tuple[str, ...] = ()
    #: Take ``user.id`` from inbound HTTP baggage (off: a browser could spoof it).
    trust_baggage_user_id: bool = False
    #: Whether sampling follows the parent's decision (only standard ``parentbased_*`` samplers and ours do).
    parent_based_sampling: bool = True
    #: Exporters per signal (``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``): ``otlp``, ``console``, both, or none (empty).
    traces_exporter: tuple[str, ...] = ("otlp",)
    metrics_exporter: tuple[str, ...] = ("otlp",)
    logs_exporter: tuple[str, ...] = ("otlp",)
    #: Key of the redaction tags' HMAC, shared so the same secret gets the same tag in every process.
    #: None: a random key per process (tags correlate within a process only). Shown as ``***``.
    redact_hash_key: str | None = field(default=None, repr=False)
    #: Environment values ignored because they were invalid (what ``agentpress-otel doctor`` reports).
    config_warnings: tuple[str, ...] = field(default=(), compare=False)
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def enabled(self, integration: str) -> bool:
        return integration in self.integrations


EXPORTERS = ("otlp", "console", "none")


def parse_exporters(raw: str | Sequence[str]) -> tuple[str, ...]:
    """``"otlp,console"`` -> ``("otlp", "console")``; ``"none"`` -> ``()`` (the SDK's ``OTEL_*_EXPORTER`` values
    we support; others, e.g. ``zipkin``, raise ``ValueError``)."""
    items = [str(x).strip().lower() for x in (raw.split(",") if isinstance(raw, str) else raw)]
    items = [x for x in items if x]
    if not items:
        raise ValueError("empty exporter list (use none for no exporter)")
    unknown = sorted(set(items) - set(EXPORTERS))
    if unknown:
        raise ValueError(f"unsupported exporters {unknown} (supported: {', '.join(EXPORTERS)})")
    if "none" in items and len(set(items)) > 1:
        raise ValueError("none cannot be combined with other exporters")
    return tuple(dict.fromkeys(x for x in items if x != "none"))


def _check_exporters(value: str | Sequence[str]) -> tuple[str, ...]:
    """An argument (``"console"``, ``["otlp", "console"]``, ``"none"`` or ``[]``) or an already parsed value."""
    if not isinstance(value, str) and not list(value):
        return ()
    return parse_exporters(value)


def load_config(overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from ``instrument()`` arguments (``None`` = not given) and the environment.

    A bad argument raises :class:`ConfigError`; a bad environment value is ignored with a warning (see
    the module docstring) and recorded in ``Config.config_warnings``.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    args = dict(overrides or {})
    sources: dict[str, str] = {}
    problems: list[str] = []

    def r(
        name: str,
        default: T,
        parse: Callable[[str], T],
        std: Iterable[str] = (),
        std_parse: Callable[[str], T] | None = None,
        validate: Callable[[Any], Any] | None = None,
    ) -> T:
        res = resolve(name, args.get(name), default=default, parse=parse, std_env=std, std_parse=std_parse,
                      env=environ, validate=validate, problems=problems)
        sources[name] = res.source
        return res.value  # type: ignore[no-any-return]

    resource_attrs = _parse_attrs_lenient(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES",
                                          problems)
    if (ours := environ.get("AGENTPRESS_OTEL_RESOURCE_ATTRIBUTES")) is not None:
        resource_attrs.update(_parse_attrs_lenient(ours, "AGENTPRESS_OTEL_RESOURCE_ATTRIBUTES", problems))
    if args.get("resource_attributes"):
        resource_attrs.update({str(k): str(v) for k, v in args["resource_attributes"].items()})

    service_name = r(
        "service_name", resource_attrs.get("service.name", "unknown_service:python"), str, ["OTEL_SERVICE_NAME"]
    )
    protocol: Protocol = r("protocol", "grpc", _parse_protocol, ["OTEL_EXPORTER_OTLP_PROTOCOL"],
                           validate=lambda v: _parse_protocol(str(v)))
    default_endpoint = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
    endpoint = r("endpoint", default_endpoint, str, ["OTEL_EXPORTER_OTLP_ENDPOINT"], validate=_check_endpoint)

    # Ours (argument, AGENTPRESS_OTEL_SAMPLE_RATIO) is parent-based. The standard variables are read only
    # when neither is set, so a bad standard value can never override (or break) an explicit one.
    sample_ratio = r("sample_ratio", 1.0, parse_float, validate=_unit_interval)
    parent_based = True
    if sources["sample_ratio"] == "default":
        std = _sampler_from_std(environ, problems)
        if std is not None:
            sample_ratio, parent_based = std
            sources["sample_ratio"] = "OTEL_TRACES_SAMPLER"

    def integration_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(r(name, default, parse_list, validate=_names))
        unknown = sorted(set(names) - set(INTEGRATIONS))
        if not unknown:
            return names
        known = ", ".join(INTEGRATIONS)
        var = sources[name]
        if var == "argument":
            raise ConfigError(f"{name}: unknown integrations {unknown}; known: {known}")
        kept = tuple(n for n in names if n in INTEGRATIONS)
        if not kept:
            kept, sources[name] = default, "default"
        problems.append(f"{var}={environ.get(var)!r}: unknown integrations {unknown} ignored (known: {known}); "
                        f"using {name}={list(kept)}")
        return kept

    disabled: set[str] = set(integration_list("disabled_integrations", ()))
    wanted = integration_list("integrations", INTEGRATIONS)

    capture = r(
        "capture_content",
        False,
        _parse_capture,
        ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"],
    )
    slack_url = r("slack_webhook_url", "", str) or None
    schedule_delay_s = r("schedule_delay_s", 1.0, parse_float, ["OTEL_BSP_SCHEDULE_DELAY"], _millis, _positive)
    # Logs: our variable again (warned about once), then the standard log-processor one.
    log_delay = resolve("schedule_delay_s", args.get("schedule_delay_s"), default=1.0, parse=parse_float,
                        std_env=["OTEL_BLRP_SCHEDULE_DELAY"], std_parse=_millis, env=environ, validate=_positive,
                        problems=problems)
    sources["log_schedule_delay_s"] = log_delay.source

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
        content_max_chars=r("content_max_chars", 16_384, parse_int, validate=_at_least(0)),
        attribute_max_chars=r("attribute_max_chars", 8_192, parse_int, ["OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"],
                              validate=_at_least(16)),
        log_max_chars=r("log_max_chars", 16_384, parse_int, validate=_at_least(64)),
        excluded_urls=r(
            "excluded_urls",
            DEFAULT_EXCLUDED_URLS,
            parse_list,
            ["OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"],
            validate=_check_patterns,
        ),
        request_id_header=r("request_id_header", "X-Request-ID", str),
        log_json=r("log_json", False, parse_bool),
        log_level=r("log_level", "INFO", str, validate=lambda v: str(_check_level(v))),
        logger_levels=r("logger_levels", {}, parse_kv, validate=_check_logger_levels),
        log_sample_ratio=r("log_sample_ratio", 1.0, parse_float, validate=_unit_interval),
        redact=r("redact", True, parse_bool),
        slack_webhook_url=slack_url,
        slack_min_level=r("slack_min_level", "ERROR", str, validate=lambda v: str(_check_level(v))),
        grafana_url=r("grafana_url", "http://localhost:3000", str),
        shutdown_timeout_s=r("shutdown_timeout_s", 5.0, parse_float, validate=_positive),
        # Ours are in seconds; the standard variables are in milliseconds.
        export_timeout_s=r("export_timeout_s", 10.0, parse_float, ["OTEL_EXPORTER_OTLP_TIMEOUT"], _millis,
                           _positive),
        metric_interval_s=r("metric_interval_s", 30.0, parse_float, ["OTEL_METRIC_EXPORT_INTERVAL"], _millis,
                            _positive),
        max_queue_size=r("max_queue_size", 2048, parse_int, ["OTEL_BSP_MAX_QUEUE_SIZE"], validate=_at_least(1)),
        runtime_interval_s=r("runtime_interval_s", 15.0, parse_float, validate=_positive),
        schedule_delay_s=schedule_delay_s,
        log_schedule_delay_s=log_delay.value,
        traces_exporter=r("traces_exporter", ("otlp",), parse_exporters, ["OTEL_TRACES_EXPORTER"],
                          validate=_check_exporters),
        metrics_exporter=r("metrics_exporter", ("otlp",), parse_exporters, ["OTEL_METRICS_EXPORTER"],
                           validate=_check_exporters),
        logs_exporter=r("logs_exporter", ("otlp",), parse_exporters, ["OTEL_LOGS_EXPORTER"],
                        validate=_check_exporters),
        internal_hosts=r("internal_hosts", (), parse_list, validate=_check_hosts),
        trust_baggage_user_id=r("trust_baggage_user_id", False, parse_bool),
        parent_based_sampling=parent_based,
        redact_hash_key=r("redact_hash_key", None, str, validate=_check_hash_key),
        config_warnings=tuple(dict.fromkeys(problems)),
        sources=sources,
    )
    _validate(cfg)
    for msg in cfg.config_warnings:
        warnings.warn(f"agentpress-otel: {msg}", RuntimeWarning, stacklevel=3)
    return cfg


def _millis(raw: str) -> float:
    return parse_float(raw) / 1000.0


def _parse_capture(raw: str) -> bool:
    v = raw.strip().upper()
    # util-genai uses NO_CONTENT / SPAN_ONLY / EVENT_ONLY / SPAN_AND_EVENT; older instrumentations use true/false.
    if v in {"SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"}:
        return True
    if v == "NO_CONTENT":
        return False
    try:
        return parse_bool(raw)
    except ValueError:
        # As util-genai does: an unknown value warns and means no content (never a startup failure).
        from agentpress_otel import _selftel

        _selftel.log.warning(
            "content capture: unknown value %r (expected NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, "
            "true or false); content is not captured", raw)
        return False


def _validate(cfg: Config) -> None:
    for name in ("shutdown_timeout_s", "export_timeout_s", "metric_interval_s", "runtime_interval_s"):
        v = getattr(cfg, name)
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{name}={v!r} ({cfg.sources.get(name, 'argument')}): must be a finite number > 0")
    if cfg.max_queue_size < 1:
        raise ConfigError("max_queue_size must be >= 1")
    if cfg.content_max_chars < 0 or cfg.attribute_max_chars < 16:
        raise ConfigError("content_max_chars must be >= 0 and attribute_max_chars >= 16")
    if not 0.0 <= cfg.log_sample_ratio <= 1.0:
        raise ConfigError("log_sample_ratio must be within [0, 1]")
    if not cfg.endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint {cfg.endpoint!r} must start with http:// or https://")


def default_instance_id() -> str:
    """A fresh id per process (and per forked child): a random UUID (v4), as ``service.instance.id`` asks."""
    return str(uuid.uuid4())
