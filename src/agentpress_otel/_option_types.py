"""What the options table (:mod:`agentpress_otel._options`) is made of: :class:`Option`, the parsers and
validators it names, and the generic resolution (argument > ``AGENTPRESS_OTEL_*`` > ``OTEL_*`` > default).

Stdlib only: the redaction engine and the price table read their variables through the table too.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal
from urllib.parse import unquote

# The one list of integrations is the registry's (that module imports nothing of the options).
from agentpress_otel.integrations._registry import INTEGRATIONS as INTEGRATIONS

Protocol = Literal["grpc", "http/protobuf"]
#: Which HTTP requests of an LLM call get their own span (the ``llm_http_spans`` option).
LLMHttpSpans = Literal["failures", "all"]


#: Paths that get no server span by default: anchored, so only these exact paths (trailing ``/`` allowed).
DEFAULT_EXCLUDED_URLS: tuple[str, ...] = (
    "^/health/?$", "^/healthz/?$", "^/metrics/?$", "^/readyz/?$", "^/livez/?$", "^/api/health/?$",
)  # fmt: skip

EXPORTERS = ("otlp", "console", "none")


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


# ----------------------------------------------------------------------------------------- parsers

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LEVEL_NAMES = {"WARN": logging.WARNING, "FATAL": logging.CRITICAL, "TRACE": 5}


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


def parse_kv(raw: str, *, on_malformed: Callable[[str], None] | None = None) -> dict[str, str]:
    """Parse ``k1=v1,k2=v2`` (W3C-baggage style, as OTEL_RESOURCE_ATTRIBUTES and _HEADERS use).

    A malformed entry (no ``=`` or no key) raises ``ValueError``, or, with ``on_malformed``, is handed to
    it and skipped (as the SDK does for resource attributes).

    Example: ``parse_kv("a=1,b=x%20y") == {"a": "1", "b": "x y"}``
    """
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            if on_malformed is None:
                raise ValueError(f"expected key=value, got {part!r}")
            on_malformed(part.strip())
            continue
        out[unquote(k.strip())] = unquote(v.strip())
    return out


def parse_list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def parse_module_pairs(raw: str) -> tuple[tuple[str, str], ...]:
    """``"a.tm,a.rp;b.tm,b.rp"`` -> ``(("a.tm", "a.rp"), ("b.tm", "b.rp"))``: AgentPress module layouts.

    Example: ``parse_module_pairs("pkg.thread_manager,pkg.response_processor")``
    """
    out: list[tuple[str, str]] = []
    for part in raw.split(";"):
        if not part.strip():
            continue
        names = [n.strip() for n in part.split(",")]
        if len(names) != 2 or not all(names):
            raise ValueError(f"expected 'thread_manager_module,response_processor_module' pairs separated by ';', "
                             f"got {part!r}")
        out.append((names[0], names[1]))
    return tuple(out)


def parse_level(level: str | int) -> int:
    """``"info"``/``"INFO"``/``"20"``/``20`` -> 20; also ``WARN``, ``FATAL`` and ``TRACE`` (5).

    Example: ``parse_level("warn") == logging.WARNING``
    """
    if isinstance(level, int):
        return level
    s = level.strip().upper()
    if s.isdigit():
        return int(s)
    if s in _LEVEL_NAMES:
        return _LEVEL_NAMES[s]
    v = logging.getLevelName(s)
    if not isinstance(v, int):
        raise ValueError(f"unknown log level {level!r}")
    return v


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


def _parse_protocol(raw: str) -> Protocol:
    v = str(raw).strip().lower()
    if v == "grpc":
        return "grpc"
    if v in {"http/protobuf", "http"}:
        return "http/protobuf"
    raise ValueError("expected 'grpc' or 'http/protobuf' (http/json is not supported by the Python SDK)")


def _parse_llm_http_spans(raw: str) -> LLMHttpSpans:
    v = str(raw).strip().lower()
    if v == "failures":
        return "failures"
    if v == "all":
        return "all"
    raise ValueError("expected 'failures' or 'all'")


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


def _parse_sdk_true(raw: str) -> bool:
    # OTEL_SDK_DISABLED: only "true" (any case) switches off; anything else means "not disabled" (SDK rule).
    return raw.strip().lower() == "true"


def _parse_switch(raw: str) -> bool:
    # The kill switch must never fail: an unknown value means "not disabled".
    return raw.strip().lower() in {"1", "true", "yes"}


# -------------------------------------------------------------------------------------- validators

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
    """One level as :func:`parse_level` reads it, normalised (upper-case name or digits; an int stays an
    int), so a typo is reported here, not later as a silently skipped integration."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    s = str(level).strip().upper()
    try:
        parse_level(s)
    except ValueError:
        raise ValueError(f"{level!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)") from None
    return s


def _check_level_name(level: Any) -> str:
    return str(_check_level(level))


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
    # from its tag.
    if len(str(v).strip()) < 16:
        raise ValueError("must be at least 16 characters (use a random value, shared by the services)")
    return _Secret(str(v))


def _names(v: str | Iterable[str]) -> tuple[str, ...]:
    names = parse_list(v) if isinstance(v, str) else tuple(v)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ValueError(f"integration names must be strings, got {bad!r}")
    return names


def _check_exporters(value: str | Sequence[str]) -> tuple[str, ...]:
    """An argument (``"console"``, ``["otlp", "console"]``, ``"none"`` or ``[]``) or an already parsed value."""
    if not isinstance(value, str) and not list(value):
        return ()
    return parse_exporters(value)


def _str_or_none(v: Any) -> str | None:
    return str(v) or None


# ----------------------------------------------------------------------------------- the table type

@dataclass
class Ctx:
    """One resolution in progress: the arguments, the variables, what is resolved so far, the problems."""

    args: Mapping[str, Any]
    env: Mapping[str, str]
    problems: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "argument", "AGENTPRESS_OTEL_X", "OTEL_X" or "default"


@dataclass(frozen=True)
class Option:
    """One option. ``name`` is its ``Config`` field (when ``in_config``) and, when ``arg_type`` is set,
    the ``instrument()`` keyword of that annotation; ``env`` defaults to ``AGENTPRESS_OTEL_<NAME>``.

    ``std_parse`` reads the standard variables when their unit differs from ours (milliseconds vs
    seconds); ``validate`` checks (and may normalise) a value from an argument or a variable, raising
    ``ValueError``; ``default_from`` computes the default from the options resolved before; ``resolver``
    replaces the generic resolution where a standard variable has its own shape.

    Example::

        Option("log_json", "bool", False, parse_bool, "Also write JSON lines to stdout.", "logs",
               arg_type="bool | None")
    """

    name: str
    type: str  # the Config field's annotation
    default: Any
    parse: Callable[[str], Any]
    doc: str
    section: str
    arg_type: str | None = None  # the instrument() annotation; None: not an argument
    std_env: tuple[str, ...] = ()
    std_parse: Callable[[str], Any] | None = None
    validate: Callable[[Any], Any] | None = None
    env: str = ""
    keyword: str = ""  # the argument read, when another option owns it (log delays share schedule_delay_s)
    default_from: Callable[[Mapping[str, Any]], Any] | None = None
    default_doc: str = ""
    resolver: Callable[[Option, Ctx], Resolved] | None = None
    secret: bool = False
    in_config: bool = True

    # Cached: the table is immutable and load_config reads these for every option.
    @cached_property
    def ours(self) -> str:
        """Our variable: ``AGENTPRESS_OTEL_<NAME>`` unless declared otherwise."""
        return self.env or f"AGENTPRESS_OTEL_{self.name.upper()}"

    @cached_property
    def argument(self) -> str | None:
        """The ``instrument()`` keyword this option reads, or None (environment only)."""
        return self.keyword or (self.name if self.arg_type is not None else None)

    @cached_property
    def variables(self) -> tuple[str, ...]:
        return (self.ours, *self.std_env)


def resolve(opt: Option, ctx: Ctx) -> Resolved:
    """The generic resolution: argument > our variable > standard variables (in order) > default.

    A bad argument raises :class:`ConfigError`; a bad variable is skipped (the next source wins) and a
    message is appended to ``ctx.problems``.
    """
    keyword, ours = opt.argument, opt.ours
    arg = ctx.args.get(keyword) if keyword else None
    if arg is not None:
        if opt.validate is not None:
            try:
                arg = opt.validate(arg)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{keyword}={arg!r} (argument): {exc}") from exc
        return Resolved(arg, "argument")
    bad: list[str] = []
    default = opt.default_from(ctx.values) if opt.default_from is not None else opt.default
    result = Resolved(default, "default")
    for var in opt.variables:
        raw = ctx.env.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = (opt.parse if var == ours or opt.std_parse is None else opt.std_parse)(raw)
            if opt.validate is not None:
                value = opt.validate(value)
        except (ValueError, TypeError) as exc:
            bad.append(f"{var}={raw!r} ignored ({exc})")
            continue
        result = Resolved(value, var)
        break
    # Named by its keyword: both schedule delays read AGENTPRESS_OTEL_SCHEDULE_DELAY_S, one warning for both.
    if bad:
        ctx.problems.extend(f"{b}; using {keyword or opt.name}={result.value!r} from {result.source}" for b in bad)
    return result


# ---------------------------------------------------------------------------- resolvers with a shape

def _resource_attributes(opt: Option, ctx: Ctx) -> Resolved:
    """Merged: ``OTEL_RESOURCE_ATTRIBUTES``, then ours, then the argument (later ones win per key)."""
    attrs: dict[str, str] = {}
    used: list[str] = []
    for var in (*opt.std_env, opt.ours):
        raw = ctx.env.get(var)
        if raw is None:
            continue

        def malformed(part: str, var: str = var) -> None:
            ctx.problems.append(f"{var}: malformed entry {part!r} ignored (expected key=value)")

        got = parse_kv(raw, on_malformed=malformed)
        attrs.update(got)
        used += [var] if got else []
    if ctx.args.get("resource_attributes"):
        attrs.update({str(k): str(v) for k, v in ctx.args["resource_attributes"].items()})
        used.append("argument")
    return Resolved(attrs, " + ".join(used) or "default")


def _sample_ratio(opt: Option, ctx: Ctx) -> Resolved:
    """Ours (argument, variable) is parent-based. The standard variables are read only when neither is
    set, so a bad standard value can never override (or break) an explicit one."""
    res = resolve(replace(opt, std_env=()), ctx)  # the standard pair is read below, with its own shape
    ctx.values["parent_based_sampling"] = True
    if res.source == "default":
        std = _sampler_from_std(ctx.env, ctx.problems)
        if std is not None:
            ctx.values["parent_based_sampling"] = std[1]
            return Resolved(std[0], "OTEL_TRACES_SAMPLER")
    return res


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
    if base in ("always_on", "always_off"):
        return (1.0 if base == "always_on" else 0.0), parent_based
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


def _integration_list(opt: Option, ctx: Ctx) -> Resolved:
    """Unknown names: a ConfigError as an argument; in a variable they are dropped with a warning."""
    res = resolve(opt, ctx)
    names = tuple(res.value)
    unknown = sorted(set(names) - set(INTEGRATIONS))
    if not unknown:
        return res
    known = ", ".join(INTEGRATIONS)
    if res.source == "argument":
        raise ConfigError(f"{opt.name}: unknown integrations {unknown}; known: {known}")
    kept = tuple(n for n in names if n in INTEGRATIONS)
    out = Resolved(kept, res.source) if kept else Resolved(opt.default, "default")
    ctx.problems.append(f"{res.source}={ctx.env.get(res.source)!r}: unknown integrations {unknown} ignored "
                        f"(known: {known}); using {opt.name}={list(out.value)}")
    return out


def _kill_switch(opt: Option, ctx: Ctx) -> Resolved:
    """Either variable set to true switches off: one variable can never undo the other's kill switch."""
    for var in opt.variables:
        raw = ctx.env.get(var)
        if raw is not None and (opt.parse if var == opt.ours else opt.std_parse or opt.parse)(raw):
            return Resolved(True, var)
    return Resolved(False, "default")


def _from_resource(key: str, *fallbacks: str) -> Callable[[Mapping[str, Any]], Any]:
    def default(values: Mapping[str, Any]) -> Any:
        attrs = values.get("resource_attributes", {})
        return next((attrs[k] for k in (key, *fallbacks[:-1]) if k in attrs), fallbacks[-1])

    return default


def _default_endpoint(values: Mapping[str, Any]) -> str:
    return "http://localhost:4317" if values.get("protocol") == "grpc" else "http://localhost:4318"
