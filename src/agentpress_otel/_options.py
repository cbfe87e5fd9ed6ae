"""The options table: every option of agentpress-otel declared once, in :data:`OPTIONS`.

Each :class:`~agentpress_otel._option_types.Option` names its ``Config`` field and type, its
``instrument()`` annotation (or none: environment only), default, our ``AGENTPRESS_OTEL_*`` variable, the
standard ``OTEL_*`` ones, parser, validator and its line of documentation. Derived from it:
``load_config`` (precedence argument > ``AGENTPRESS_OTEL_*`` > ``OTEL_*`` > default), the ``instrument()``
option check, ``doctor``'s source report, the variables read at use time (:func:`env_value`) and the
tables of docs/configuration.md (:func:`replace_docs`). Tests keep the ``instrument()`` signature, ``Config``
and the docs equal to this table. Order matters: a ``default_from`` reads options resolved above it.

Regenerate the docs after editing: ``scripts/gen-config-docs.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from agentpress_otel._option_types import (
    DEFAULT_EXCLUDED_URLS,
    INTEGRATIONS,
    Ctx,
    Option,
    _at_least,
    _check_endpoint,
    _check_exporters,
    _check_hash_key,
    _check_hosts,
    _check_level_name,
    _check_logger_levels,
    _check_patterns,
    _default_endpoint,
    _from_resource,
    _integration_list,
    _kill_switch,
    _millis,
    _names,
    _parse_capture,
    _parse_llm_http_spans,
    _parse_protocol,
    _parse_sdk_true,
    _parse_switch,
    _positive,
    _resource_attributes,
    _sample_ratio,
    _str_or_none,
    _unit_interval,
    parse_bool,
    parse_exporters,
    parse_float,
    parse_int,
    parse_kv,
    parse_list,
    parse_module_pairs,
    resolve,
)

_ID, _EXP, _SAMP, _INT, _CTX, _LLM, _LOGS, _ALERT, _OFF = (
    "Identity (the OpenTelemetry resource)", "Export (OTLP)", "Sampling and limits", "Integrations",
    "Context propagation and trust", "LLM content and cost", "Logs and redaction", "Alerts and links",
    "Switching everything off",
)  # fmt: skip
_EXPORTER_DOC = (
    "`otlp`, `console` (one readable line per span, log record or metric point on stdout, for local work), "
    "`none` (the signal is still recorded, e.g. spans give logs their trace ids, but not exported), or a comma "
    "list (`otlp,console`). Each exporter has its own batch queue and goes through redaction. Other SDK values "
    "(`zipkin`, `prometheus`) in a variable are ignored with a warning; as an argument they raise `ConfigError`."
)


def _exporter(signal: str) -> Option:
    return Option(f"{signal}_exporter", "tuple[str, ...]", ("otlp",), parse_exporters,
                  _EXPORTER_DOC if signal == "traces" else f"As `traces_exporter`, for {signal}.", _EXP,
                  arg_type="str | Sequence[str] | None", std_env=(f"OTEL_{signal.upper()}_EXPORTER",),
                  validate=_check_exporters)


def _switch(signal: str) -> Option:
    return Option(signal, "bool", True, parse_bool, f"`false` turns {signal} off entirely.", _EXP,
                  arg_type="bool | None")


OPTIONS: tuple[Option, ...] = (
    Option("disabled", "bool", False, _parse_switch,
           "`true` (or `1`, `yes`): `instrument()` returns a no-op handle: no providers, no patches, no threads. "
           "It never raises, whatever else is set (even an invalid argument is only warned about). Either "
           "variable switches off; `OTEL_SDK_DISABLED` counts only the value `true`.", _OFF,
           std_env=("OTEL_SDK_DISABLED",), std_parse=_parse_sdk_true, resolver=_kill_switch),
    # Identity
    Option("resource_attributes", "dict[str, str]", {}, parse_kv,
           "`k1=v1,k2=v2`, merged: the standard variable, then ours, then the argument (later ones win). "
           "Malformed entries are skipped one by one with a warning, as the SDK does. Keep them low-cardinality.",
           _ID, arg_type="Mapping[str, str] | None", std_env=("OTEL_RESOURCE_ATTRIBUTES",),
           resolver=_resource_attributes),
    Option("service_name", "str", "unknown_service:python", str,
           "Use one name per deployable: `agentpress-api`, `agentpress-worker`.", _ID, arg_type="str | None",
           std_env=("OTEL_SERVICE_NAME",), default_from=_from_resource("service.name", "unknown_service:python"),
           default_doc="`service.name` from the resource attributes, else `unknown_service:python`"),
    Option("service_version", "str", "0.0.0", str, "The deployed version (`service.version`).", _ID,
           arg_type="str | None", default_from=_from_resource("service.version", "0.0.0"),
           default_doc="`service.version` from the resource attributes, else `0.0.0`"),
    Option("environment", "str", "development", str,
           "Becomes `deployment.environment.name`; the dashboards' `env` variable.", _ID, arg_type="str | None",
           default_from=_from_resource("deployment.environment.name", "deployment.environment", "development"),
           default_doc="`deployment.environment.name` (or `deployment.environment`) from the resource "
                       "attributes, else `development`"),
    Option("service_instance_id", "str", "", str,
           "`service.instance.id`; when unset a random UUID is generated per process and per forked worker.",
           _ID, default_from=_from_resource("service.instance.id", ""),
           default_doc="`service.instance.id` from the resource attributes, else a random UUID per process"),
    # Export
    Option("protocol", "Protocol", "grpc", _parse_protocol,
           "`grpc` or `http/protobuf` (`http/json` is not supported by the Python SDK). Over `http/protobuf` the "
           "proxy variables (`HTTP(S)_PROXY`, `NO_PROXY`), `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` and `~/.netrc` are "
           "honoured as `requests` honours them, but read once at `instrument()`, like every `OTEL_*` variable; "
           "with no proxy or credentials to add, exports skip `requests` and go through urllib3 with the same "
           "certificate checks.",
           _EXP,
           arg_type="str | None", std_env=("OTEL_EXPORTER_OTLP_PROTOCOL",), validate=_parse_protocol),
    Option("endpoint", "str", "http://localhost:4317", str,
           "Must start with `http://` or `https://`; `https://` turns TLS on for gRPC. For HTTP it is a base "
           "URL: `/v1/traces`, `/v1/metrics`, `/v1/logs` are appended.", _EXP, arg_type="str | None",
           std_env=("OTEL_EXPORTER_OTLP_ENDPOINT",), validate=_check_endpoint, default_from=_default_endpoint,
           default_doc="`http://localhost:4317` (gRPC) or `http://localhost:4318` (HTTP)"),
    Option("headers", "dict[str, str]", {}, parse_kv,
           "`key=value,...`, e.g. an auth token for a hosted backend. `doctor` masks the values.", _EXP,
           arg_type="Mapping[str, str] | None", std_env=("OTEL_EXPORTER_OTLP_HEADERS",), secret=True),
    _switch("traces"), _switch("metrics"), _switch("logs"),
    _exporter("traces"), _exporter("metrics"), _exporter("logs"),
    Option("export_timeout_s", "float", 10.0, parse_float,
           "Per export request, seconds (the standard variable is in milliseconds).", _EXP,
           arg_type="float | None", std_env=("OTEL_EXPORTER_OTLP_TIMEOUT",), std_parse=_millis,
           validate=_positive),
    Option("metric_interval_s", "float", 30.0, parse_float,
           "How often metrics are pushed, seconds (the standard variable is in milliseconds).", _EXP,
           arg_type="float | None", std_env=("OTEL_METRIC_EXPORT_INTERVAL",), std_parse=_millis,
           validate=_positive),
    Option("max_queue_size", "int", 2048, parse_int,
           "Span and log queues. When a queue is full, each new item is still accepted and the **oldest** "
           "queued item is evicted (the SDK's `deque(maxlen)`); every eviction is counted in "
           "`agentpress_otel.exporter.dropped{reason=\"queue_full\"}`. Items lost to failed exports are counted "
           "with `reason=\"export_failed\"` (metric data points too, with `signal=\"metrics\"`).", _EXP,
           arg_type="int | None", std_env=("OTEL_BSP_MAX_QUEUE_SIZE",), validate=_at_least(1)),
    Option("schedule_delay_s", "float", 1.0, parse_float,
           "The longest a span waits in its queue before a batch is exported (a batch also goes out as soon "
           "as it is a quarter of the queue). Seconds; the standard variable is in milliseconds. The argument "
           "and our variable also set `log_schedule_delay_s`.", _EXP, arg_type="float | None",
           std_env=("OTEL_BSP_SCHEDULE_DELAY",), std_parse=_millis, validate=_positive),
    Option("log_schedule_delay_s", "float", 1.0, parse_float,
           "The same for log records: the `schedule_delay_s` argument or our variable, else the standard "
           "log-processor variable (milliseconds).", _EXP, env="AGENTPRESS_OTEL_SCHEDULE_DELAY_S",
           keyword="schedule_delay_s", std_env=("OTEL_BLRP_SCHEDULE_DELAY",), std_parse=_millis,
           validate=_positive),
    Option("shutdown_timeout_s", "float", 5.0, parse_float,
           "The longest `shutdown()` (and process exit) waits for a final flush, even with a dead Collector.",
           _EXP, arg_type="float | None", validate=_positive),
    # Sampling and limits
    Option("sample_ratio", "float", 1.0, parse_float,
           "Head sampling. `sample_ratio` (argument or ours) is parent-based. The standard "
           "`OTEL_TRACES_SAMPLER` + `OTEL_TRACES_SAMPLER_ARG` are read only when neither is set, with their "
           "standard meaning: `always_on`, `always_off` and `traceidratio` decide on their own, only the "
           "`parentbased_` forms follow the parent. An unsupported sampler or a bad `_ARG` falls back like the "
           "SDK (parent-based always-on / ratio 1.0) with a warning. Keep 1.0 and let the Collector's tail "
           "sampling decide (errors and slow traces are always kept); a lower ratio saves export cost, leaves "
           "the dashboards' RED panels exact (they use the SDK's HTTP metrics) but thins span metrics, the "
           "service graph and Tempo (docs/rollout.md).", _SAMP, arg_type="float | None",
           std_env=("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"), validate=_unit_interval, resolver=_sample_ratio),
    Option("attribute_max_chars", "int", 8_192, parse_int, "Longer span attribute values are truncated.", _SAMP,
           arg_type="int | None", std_env=("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",), validate=_at_least(16)),
    Option("log_max_chars", "int", 16_384, parse_int,
           "Log messages are cut to this length (ending in the marker `…[N chars cut]…`) on the caller, "
           "before they are queued; each of the two log queues (ours and the batch processor's) also holds "
           "at most 8 MiB.", _SAMP, arg_type="int | None",
           validate=_at_least(64)),
    Option("excluded_urls", "tuple[str, ...]", DEFAULT_EXCLUDED_URLS, parse_list,
           "Requests that get no server span. A comma-separated list of regular expressions, each *searched* "
           "in the request path, as the standard variables define them (`client/.*/info,healthcheck`); anchor "
           "with `^...$` for an exact path. The defaults are exact paths, with or without a trailing `/`. A "
           "value replaces the defaults.", _SAMP, arg_type="Sequence[str] | None",
           std_env=("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"), validate=_check_patterns),
    Option("request_id_header", "str", "X-Request-ID", str,
           "Read from the request when valid, else generated; echoed on the response; becomes "
           "`agentpress.request.id` / `request_id`.", _SAMP, arg_type="str | None"),
    # Integrations
    Option("disabled_integrations", "frozenset[str]", (), parse_list,
           "Subtracted from `integrations`, e.g. `redis,runtime`. Unknown names: `ConfigError` as an argument, "
           "a warning (and ignored) in the environment.", _INT, arg_type="Sequence[str] | None",
           validate=_names, resolver=_integration_list, in_config=False),
    Option("integrations", "frozenset[str]", INTEGRATIONS, parse_list,
           "Each is used only when its library is installed (`agentpress`: when one of its layouts is "
           "importable; see docs/agentpress.md). httpx, redis-py, Dramatiq, structlog and LiteLLM are patched "
           "when the app first imports them (`instrument()` does not import them): `instrument()` costs about 0.1 s "
           "of CPU instead of 0.3–0.5 s. `Config.integrations` is this list minus `disabled_integrations`.",
           _INT, arg_type="Sequence[str] | None", validate=_names, resolver=_integration_list,
           default_doc="all: `" + ",".join(INTEGRATIONS) + "`"),
    Option("agentpress_modules", "tuple[tuple[str, str], ...]", (), parse_module_pairs,
           "`thread_manager_module,response_processor_module` pairs separated by `;` that replace the three "
           "AgentPress layouts tried by default, for a fork with other module paths (docs/agentpress.md).", _INT,
           default_doc="the three AgentPress layouts"),
    Option("runtime_interval_s", "float", 15.0, parse_float, "Sampling interval of process/event-loop metrics.",
           _INT, arg_type="float | None", validate=_positive),
    Option("loop_probe_interval_s", "float", 0.25, parse_float,
           "How often each running event loop is probed for lag (`agentpress.asyncio.loop_lag`). The default "
           "catches 100 ms-scale stalls at four wake-ups a second; shorter catches shorter stalls. Seconds; "
           "environment only.", _INT,
           validate=_positive),
    # Context propagation and trust
    Option("internal_hosts", "tuple[str, ...]", (), parse_list,
           "Host names that may receive our id baggage (`agentpress.project.id`, `.thread.id`, `.agent_run.id`, "
           "`.request.id`, `user.id`), comma-separated, matched as a suffix on a dot boundary (`corp.example` "
           "matches `billing.corp.example`; `*.corp.example` = `.corp.example`). Loopback and private-network "
           "addresses, single-label names (`billing`) and `localhost`, `.internal`, `.local`, `.svc`, "
           "`.cluster.local` names are always internal.", _CTX, arg_type="Sequence[str] | None",
           validate=_check_hosts),
    Option("trust_baggage_user_id", "bool", False, parse_bool,
           "Take `user.id` from the inbound `baggage` header. Off by default because any browser can send one; "
           "set the user after authentication with `thread_context(user_id=...)`. Turn it on only for services "
           "whose callers are all your own (an internal API behind the one that authenticates).", _CTX,
           arg_type="bool | None"),
    # LLM content and cost
    Option("capture_content", "bool", False, _parse_capture,
           "Record prompts, completions and tool arguments/results on spans (always redacted). Accepts "
           "true/false and util-genai's `NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY`, `SPAN_AND_EVENT` (an unknown "
           "value warns and means false).", _LLM, arg_type="bool | None",
           std_env=("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",)),
    Option("llm_http_spans", "LLMHttpSpans", "failures", _parse_llm_http_spans,
           "Which HTTP requests an LLM call makes get their own CLIENT span under its chat span: `failures` (its "
           "first request only if it fails or answers >= 400; every later one, i.e. retries) or `all`. A call's one "
           "successful request repeats its chat span (same server, same duration), so by default it only counts in "
           "`http.client.request.duration` and carries the chat span's `traceparent` (docs/genai.md). Our httpx "
           "wrapper only: under a transition mode (`OTEL_SEMCONV_STABILITY_OPT_IN=http/dup`) the stock "
           "instrumentation gives every request its span. Environment only.", _LLM),
    Option("content_max_chars", "int", 16_384, parse_int, "Per recorded message body.", _LLM,
           arg_type="int | None", validate=_at_least(0)),
    Option("prices_file", "str | None", None, str,
           "JSON file `{\"model\": {\"input\": .., \"output\": .., \"cache_read\": .., \"cache_write\": ..}}` "
           "(USD per million tokens) merged over the built-in price table.", _LLM),
    # Logs and redaction
    Option("log_level", "str", "INFO", str,
           "Lowest level exported over OTLP. The root logger's level is kept; set explicitly, it is lowered "
           "for export only (docs/logging.md).", _LOGS, arg_type="str | None", validate=_check_level_name),
    Option("logger_levels", "dict[str, str]", {}, parse_kv,
           "Per-logger export levels, `myapp.db=DEBUG,LiteLLM=INFO`. `LiteLLM`, `LiteLLM Router`, `LiteLLM Proxy` and "
           "`httpx` export from WARNING unless named (their INFO lines repeat each call's span). Every level must "
           "be a level name (`DEBUG` … "
           "`CRITICAL`, `WARN`, `FATAL`, `TRACE`) or a number: a bad one is a `ConfigError` naming the logger "
           "(argument), or a warning and no overrides (variable).", _LOGS,
           arg_type="Mapping[str, str] | None", validate=_check_logger_levels),
    Option("log_sample_ratio", "float", 1.0, parse_float,
           "Fraction of DEBUG/INFO records kept, decided by trace id so a kept trace keeps all its logs; "
           "WARNING and above are never sampled.", _LOGS, arg_type="float | None", validate=_unit_interval),
    Option("log_json", "bool", False, parse_bool,
           "Also write one JSON line per record to stdout (with `trace_id`, `span_id` and the ids).", _LOGS,
           arg_type="bool | None"),
    Option("redact", "bool", True, parse_bool,
           "Secrets and personal data are replaced by `[REDACTED:<kind>:<hash>]` in spans, logs and alerts, on "
           "the export thread.", _LOGS, arg_type="bool | None"),
    Option("redact_hash_key", "str | None", None, str,
           "Key of the keyed hash in the tags. Give every service the same random value (16 characters or "
           "more) and the same secret gets the same tag in all of them, across restarts; without it, tags "
           "correlate within one process only. Treat it as a secret (`doctor` shows `***`).", _LOGS,
           arg_type="str | None", validate=_check_hash_key, secret=True,
           default_doc="none (a random key per process)"),
    # Alerts and links
    Option("slack_webhook_url", "str | None", None, str,
           "Incoming-webhook URL for in-process error alerts (deduplicated, rate limited, never blocking). "
           "Treat it as a secret.", _ALERT, arg_type="str | None", validate=_str_or_none, secret=True,
           default_doc="none (alerts off)"),
    Option("slack_min_level", "str", "ERROR", str, "Lowest level that alerts.", _ALERT, arg_type="str | None",
           validate=_check_level_name),
    Option("grafana_url", "str", "http://localhost:3000", str,
           "Base of the links in Slack messages and at the end of `agentpress-otel demo --endpoint ...`.",
           _ALERT, arg_type="str | None"),
)

#: Options by name.
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
#: The ``instrument()`` keywords the table declares (the signature test compares them).
ARGUMENTS: frozenset[str] = frozenset(o.name for o in OPTIONS if o.arg_type is not None)
#: Options whose values ``doctor`` masks.
SECRETS: frozenset[str] = frozenset(o.name for o in OPTIONS if o.secret)


def env_value(name: str, env: Mapping[str, str] | None = None) -> Any:
    """Option ``name`` resolved from the environment alone, problems ignored: for code that reads its
    variable at use time (the redaction key, the price file, the kill switch); ``instrument()`` reports a
    bad value once, through ``Config.config_warnings``.

    Example: ``env_value("prices_file", {"AGENTPRESS_OTEL_PRICES_FILE": "/p.json"}) == "/p.json"``
    """
    opt = BY_NAME[name]
    ctx = Ctx(args={}, env=os.environ if env is None else env)
    return (opt.resolver or resolve)(opt, ctx).value


# ------------------------------------------------------------------------------------------- docs

_MARK = re.compile(
    r"<!-- generated from the options table: (?P<section>[^>]+?) -->\n.*?<!-- end of generated table -->", re.S
)


def _show_default(opt: Option) -> str:
    if opt.default_doc:
        return opt.default_doc
    v = opt.default
    if v is None or v in ({}, ()):
        return "none"
    if isinstance(v, bool):
        return f"`{str(v).lower()}`"
    if isinstance(v, tuple):
        return "`" + ",".join(v) + "`"
    return f"`{v}`"


def render_section(section: str) -> str:
    """The Markdown table of one section of the table, with its markers (as in docs/configuration.md)."""
    out = [f"<!-- generated from the options table: {section} -->",
           "| Option | Environment | Default | Notes |", "|---|---|---|---|"]
    for o in OPTIONS:
        if o.section == section:
            name = f"`{o.name}`" + ("" if o.arg_type is not None else
                                    f" (argument `{o.keyword}`)" if o.keyword else " (variable only)")
            env = ", ".join(f"`{v}`" for v in o.variables)
            out.append(f"| {name} | {env} | {_show_default(o)} | {o.doc} |")
    return "\n".join([*out, "<!-- end of generated table -->"])


def replace_docs(text: str) -> str:
    """``text`` (docs/configuration.md) with every generated table re-rendered; each section of the table
    must have exactly one place in it (``ValueError`` otherwise)."""
    found = [m.group("section") for m in _MARK.finditer(text)]
    wanted = list(dict.fromkeys(o.section for o in OPTIONS))
    if sorted(found) != sorted(wanted):
        raise ValueError(f"generated tables {found} do not match the table's sections {wanted}")
    return _MARK.sub(lambda m: render_section(m.group("section")), text)
