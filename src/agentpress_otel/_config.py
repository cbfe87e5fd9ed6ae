"""The effective options of one ``instrument()`` call, resolved from the options table.

Every option is declared once, in :mod:`agentpress_otel._options`; this module turns the table into a
:class:`Config`, with precedence argument > AGENTPRESS_OTEL_* > OTEL_* > default, and remembers where each
value came from, so ``agentpress-otel doctor`` can show it.

A bad *argument* is a programmer error: :class:`ConfigError`. A bad *environment* value is an operator's
typo that must not take the app down: it is ignored with one ``RuntimeWarning`` naming the variable and
its value, the next source (or the default) is used, and the message is kept in
``Config.config_warnings`` for ``agentpress-otel doctor``.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentpress_otel._option_types import (
    DEFAULT_EXCLUDED_URLS,
    EXPORTERS,
    INTEGRATIONS,
    ConfigError,
    Ctx,
    LLMHttpSpans,
    Protocol,
    resolve,
)
from agentpress_otel._options import ARGUMENTS, OPTIONS, env_value

__all__ = [
    "DEFAULT_EXCLUDED_URLS", "EXPORTERS", "INTEGRATIONS", "Config", "ConfigError", "Protocol", "default_instance_id",
    "load_config", "sdk_disabled",
]  # fmt: skip

#: ``Config`` fields that are not options: computed while resolving, or bookkeeping.
DERIVED_FIELDS = ("parent_based_sampling", "config_warnings", "sources")


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
    #: ``failures``: an LLM call's HTTP request gets its own span only when it fails or is a retry; ``all``: always.
    llm_http_spans: LLMHttpSpans = "failures"
    #: Event-loop lag probe period, seconds (the runtime integration).
    loop_probe_interval_s: float = 0.25
    #: AgentPress (thread manager, response processor) module pairs replacing the known layouts; () = those.
    agentpress_modules: tuple[tuple[str, str], ...] = ()
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
    #: The kill switch (``AGENTPRESS_OTEL_DISABLED`` / ``OTEL_SDK_DISABLED``): a handle that does nothing.
    disabled: bool = False
    #: A JSON price table merged over the built-in one (``AGENTPRESS_OTEL_PRICES_FILE``).
    prices_file: str | None = None
    #: Environment values ignored because they were invalid (what ``agentpress-otel doctor`` reports).
    config_warnings: tuple[str, ...] = field(default=(), compare=False)
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def enabled(self, integration: str) -> bool:
        return integration in self.integrations


def load_config(overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from ``instrument()`` arguments (``None`` = not given) and the environment.

    A bad argument raises :class:`ConfigError`; a bad environment value is ignored with a warning (see
    the module docstring) and recorded in ``Config.config_warnings``.

    Example::

        load_config({"sample_ratio": 0.5}, env={"OTEL_SERVICE_NAME": "api"}).sources["service_name"]
        # "OTEL_SERVICE_NAME"
    """
    args = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(args) - ARGUMENTS)
    if unknown:
        raise ConfigError(f"unknown options {unknown}")
    ctx = Ctx(args=args, env=os.environ if env is None else env)
    for opt in OPTIONS:
        res = (opt.resolver or resolve)(opt, ctx)
        ctx.values[opt.name], ctx.sources[opt.name] = res.value, res.source
    values = ctx.values
    values["integrations"] = frozenset(values["integrations"]) - set(values.pop("disabled_integrations"))
    cfg = Config(**values, config_warnings=tuple(dict.fromkeys(ctx.problems)), sources=ctx.sources)
    for msg in cfg.config_warnings:
        warnings.warn(f"agentpress-otel: {msg}", RuntimeWarning, stacklevel=3)
    return cfg


def sdk_disabled(env: Mapping[str, str] | None = None) -> bool:
    """``OTEL_SDK_DISABLED=true`` or ``AGENTPRESS_OTEL_DISABLED=true``: the kill switch, never raising.

    Example: ``sdk_disabled({"OTEL_SDK_DISABLED": "true"}) is True``
    """
    return bool(env_value("disabled", env))


def default_instance_id() -> str:
    """A fresh id per process (and per forked child): a random UUID (v4), as ``service.instance.id`` asks."""
    return str(uuid.uuid4())
