"""Expected telemetry shapes from the PUBLISHED semantic conventions, and a checker of emitted telemetry.

Nothing here is derived from agentpress-otel's output. Sources:

* Attribute names and deprecations, metric names, instrument kinds and units: the
  ``opentelemetry-semantic-conventions`` package installed with the SDK (0.66b2 = semantic-conventions
  v1.44.0), read at run time: every ``Final`` string constant of its ``attributes`` modules (its docstring
  says whether it is deprecated), and every ``create_*`` metric factory (called on a recording meter).
* GenAI: core v1.42.0 moved ``gen_ai.*``/``openai.*`` to semantic-conventions-genai and core v1.44.0 marks
  them "Moved to the OpenTelemetry GenAI semantic conventions repository": those are defined (in the
  GenAI registry); any other deprecation is a violation. Names the GenAI repository defines that the
  package predates are listed in ``GENAI_NAMES`` with the document that defines them.
* Requirement levels, span-name rules, advised buckets and enum values: written below from the convention
  documents (each rule cites its document), because the package carries names only.

Exempt: our own ``agentpress.*`` namespace (and ``agentpress_otel.*`` self-telemetry), and on log
records the application's own structured fields (keys without a dot: structlog key-values, ``logging``
extras), which are its data, not conventions.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opentelemetry.semconv._incubating.attributes as inc_attrs
import opentelemetry.semconv._incubating.metrics as inc_metrics
import opentelemetry.semconv.attributes as stable_attrs

_MOVED = "Moved to the [OpenTelemetry GenAI semantic conventions repository]"


def _module_constants(pkg: Any) -> Iterable[tuple[str, str | None]]:
    """(value, docstring) of every module-level string constant in ``pkg``'s modules."""
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        tree = ast.parse(Path(inspect.getfile(mod)).read_text())
        body = tree.body
        for i, node in enumerate(body):
            target_val = None
            if isinstance(node, (ast.AnnAssign, ast.Assign)) and isinstance(node.value, ast.Constant):
                target_val = node.value.value
            if not isinstance(target_val, str):
                continue
            doc = None
            nxt = body[i + 1] if i + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                doc = nxt.value.value
            yield target_val, doc


def _load_attributes() -> dict[str, str | None]:
    """attribute name -> None (defined) or the deprecation note."""
    out: dict[str, str | None] = {}
    for pkg in (stable_attrs, inc_attrs):
        for name, doc in _module_constants(pkg):
            note = (doc or "").strip()
            if note.startswith("Deprecated:") and _MOVED not in note:
                out.setdefault(name, note)
            else:
                out[name] = None
    return out


class _RecordingMeter:
    def __init__(self) -> None:
        self.made: dict[str, tuple[str, str]] = {}

    def __getattr__(self, kind: str) -> Any:
        def create(*args: Any, **kwargs: Any) -> None:
            name = kwargs.get("name", args[0] if args else "")
            self.made[name] = (kind.removeprefix("create_").removeprefix("observable_"), kwargs.get("unit", ""))

        return create


def _load_metrics() -> dict[str, tuple[str, str]]:
    """metric name -> (instrument kind: counter|up_down_counter|histogram|gauge, unit)."""
    meter = _RecordingMeter()
    for info in pkgutil.iter_modules(inc_metrics.__path__):
        mod = importlib.import_module(f"{inc_metrics.__name__}.{info.name}")
        for fname, fn in inspect.getmembers(mod, inspect.isfunction):
            if fname.startswith("create_"):
                params = inspect.signature(fn).parameters
                fn(meter, **({"callbacks": None} if "callbacks" in params else {}))
    return meter.made


ATTRIBUTES = _load_attributes()
METRICS = _load_metrics()
#: metric name -> deprecation note (from the metric constants' docstrings).
METRIC_DEPRECATED = {n: d.strip() for n, d in _module_constants(inc_metrics)
                     if d and d.strip().startswith("Deprecated:") and _MOVED not in d}

#: GenAI names defined by semantic-conventions-genai but not (or only as "moved") in the package.
#: Baseline A: main through PR #424 (docs/gen-ai/gen-ai-spans.md, gen-ai-agent-spans.md, gen-ai-metrics.md).
#: Latest: model/gen-ai/token-metrics.yaml, docs/gen-ai/client-inference.md (PR #521), changelog.d/440.
GENAI_NAMES: set[str] = {
    "gen_ai.request.reasoning.level", "gen_ai.request.previous_response.id", "gen_ai.conversation.compacted",
    "gen_ai.usage.cache_write.input_tokens", "gen_ai.token.modality",
}
GENAI_METRICS: dict[str, tuple[str, str]] = {
    "gen_ai.execute_tool.duration": ("histogram", "s"),
    "gen_ai.invoke_agent.duration": ("histogram", "s"),
    "gen_ai.invoke_agent.inference_calls": ("histogram", "{inference_call}"),
    "gen_ai.invoke_agent.tool_calls": ("histogram", "{tool_call}"),
    "gen_ai.client.inference.duration": ("histogram", "s"),
    "gen_ai.client.inference.time_to_first_chunk": ("histogram", "s"),
    "gen_ai.client.inference.time_per_output_chunk": ("histogram", "s"),
    "gen_ai.client.inference.usage.input_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.output_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.cache_read.input_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.cache_write.input_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.usage.reasoning.output_tokens": ("counter", "{token}"),
    "gen_ai.client.inference.operation.input_tokens": ("histogram", "{token}"),
    "gen_ai.client.inference.operation.output_tokens": ("histogram", "{token}"),
}

#: Advised histogram boundaries (http/http-metrics.md, messaging/messaging-metrics.md, gen-ai-metrics.md).
_HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
_GENAI_DURATION = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
ADVISED_BUCKETS: dict[str, list[float]] = {
    "http.server.request.duration": _HTTP_BUCKETS,
    "http.client.request.duration": _HTTP_BUCKETS,
    "messaging.process.duration": _HTTP_BUCKETS,
    "messaging.client.operation.duration": _HTTP_BUCKETS,
    "gen_ai.client.operation.duration": _GENAI_DURATION,
    "gen_ai.client.operation.time_to_first_chunk": _GENAI_DURATION,
    "gen_ai.client.operation.time_per_output_chunk": _GENAI_DURATION,
    "gen_ai.client.inference.duration": _GENAI_DURATION,
    "gen_ai.execute_tool.duration": _GENAI_DURATION,
    "gen_ai.client.token.usage": _TOKENS,
    "gen_ai.invoke_agent.duration": [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6],
}

#: Required (and conditionally required, when their condition is known to hold) metric attributes.
METRIC_REQUIRED: dict[str, set[str]] = {
    "http.server.request.duration": {"http.request.method", "url.scheme"},  # http-metrics.md
    "http.client.request.duration": {"http.request.method", "server.address", "server.port"},
    "messaging.process.duration": {"messaging.system", "messaging.operation.name"},  # messaging-metrics.md
    "gen_ai.client.operation.duration": {"gen_ai.operation.name", "gen_ai.provider.name"},
    "gen_ai.client.token.usage": {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.token.type"},
    "gen_ai.client.inference.duration": {"gen_ai.operation.name", "gen_ai.provider.name"},
    "gen_ai.client.inference.usage.input_tokens": {"gen_ai.operation.name", "gen_ai.provider.name",
                                                   "gen_ai.token.modality"},
    "gen_ai.client.inference.usage.output_tokens": {"gen_ai.operation.name", "gen_ai.provider.name",
                                                    "gen_ai.token.modality"},
    "gen_ai.execute_tool.duration": {"gen_ai.tool.name"},
}

def _load_enums() -> dict[str, set[str]]:
    """attribute name -> the values of its ``...Values`` Enum class in the package."""
    import enum

    out: dict[str, set[str]] = {}
    for pkg in (stable_attrs, inc_attrs):
        for info in pkgutil.iter_modules(pkg.__path__):
            mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for cname, cls in inspect.getmembers(mod, inspect.isclass):
                if not (issubclass(cls, enum.Enum) and cname.endswith("Values")):
                    continue
                const = re.sub(r"(?<!^)(?=[A-Z])", "_", cname.removesuffix("Values")).upper()
                attr = getattr(mod, const, None)
                if isinstance(attr, str):
                    out.setdefault(attr, set()).update(str(m.value) for m in cls)
    return out


_PACKAGE_ENUMS = _load_enums()
#: Enum attributes checked strictly (each has a value that fits everything we emit): the package's values,
#: plus the GenAI modality enum the package predates (token-metrics.yaml).
ENUMS: dict[str, set[str]] = {
    a: _PACKAGE_ENUMS[a] for a in (
        "host.arch", "os.type", "http.request.method", "network.transport", "messaging.operation.type",
        "cpu.mode", "disk.io.direction", "process.context_switch.type", "gen_ai.token.type",
        "gen_ai.operation.name", "db.system.name")  # messaging.system is open: custom values such as dramatiq
}
ENUMS["url.scheme"] = {"http", "https"}  # url.md: the scheme component; only these two reach an HTTP server
ENUMS["gen_ai.token.modality"] = {"text", "image", "audio", "unknown"}


#: Registry types of the non-string attributes we can meet (everything else is a string or string[]).
INT_ATTRS = {"server.port", "client.port", "http.response.status_code", "db.operation.batch.size",
             "cpython.gc.generation", "process.pid", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
             "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
             "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.reasoning.output_tokens",
             "gen_ai.request.max_tokens", "gen_ai.request.seed", "gen_ai.request.choice.count",
             "code.line.number"}
FLOAT_ATTRS = {"gen_ai.request.temperature", "gen_ai.request.top_p", "gen_ai.response.time_to_first_chunk",
               "gen_ai.evaluation.score.value"}
LIST_ATTRS = {"gen_ai.response.finish_reasons", "gen_ai.request.stop_sequences"}


@dataclass
class Span:
    name: str
    kind: str  # SERVER CLIENT PRODUCER CONSUMER INTERNAL
    attributes: dict[str, Any]
    error: bool
    span_id: bytes = b""
    parent_id: bytes = b""


@dataclass
class Metric:
    name: str
    kind: str
    unit: str
    points: list[dict[str, Any]] = field(default_factory=list)
    bounds: list[list[float]] = field(default_factory=list)


def _ours(key: str) -> bool:
    # agentpress.* and the toolkit's self-telemetry namespace agentpress_otel.* are ours.
    return key.startswith(("agentpress.", "agentpress_otel."))


def check_attribute(where: str, key: str, value: Any, out: list[str]) -> None:
    """Name defined and not deprecated; type and enum value as the registry says."""
    if _ours(key):
        return
    if key not in ATTRIBUTES and key not in GENAI_NAMES:
        out.append(f"{where}: attribute {key!r} is in no registry")
        return
    note = ATTRIBUTES.get(key)
    if note:
        out.append(f"{where}: attribute {key!r} is deprecated ({note.splitlines()[0][:80]})")
    if key in INT_ATTRS and (not isinstance(value, int) or isinstance(value, bool)):
        out.append(f"{where}: {key} must be an int, got {value!r}")
    elif key in FLOAT_ATTRS and not isinstance(value, (int, float)):
        out.append(f"{where}: {key} must be a double, got {value!r}")
    elif key in LIST_ATTRS and not isinstance(value, list):
        out.append(f"{where}: {key} must be an array, got {value!r}")
    if key in ENUMS and value not in ENUMS[key]:
        out.append(f"{where}: {key}={value!r} is not one of the registry's values")


def check_span(s: Span, by_id: dict[bytes, Span], out: list[str]) -> None:
    a = s.attributes
    where = f"span {s.name!r}"
    for k, v in a.items():
        check_attribute(where, k, v, out)

    def need(keys: Iterable[str], why: str) -> None:
        for k in keys:
            if k not in a:
                out.append(f"{where}: missing {why} {k!r}")

    def named(expected: str, doc: str) -> None:
        if s.name != expected:
            out.append(f"{where}: name should be {expected!r} ({doc})")

    op = a.get("gen_ai.operation.name")
    if "http.request.method" in a and s.kind == "SERVER":  # http/http-spans.md, HTTP server
        need(("http.request.method", "url.path", "url.scheme"), "required")
        method = "HTTP" if a["http.request.method"] == "_OTHER" else a["http.request.method"]
        named(f"{method} {a['http.route']}" if "http.route" in a else method, "{method} {http.route}")
        if int(a.get("http.response.status_code", 0)) >= 500:
            need(("error.type",), "conditionally required (5xx)")
    elif "http.request.method" in a and s.kind == "CLIENT":  # http/http-spans.md, HTTP client
        need(("http.request.method", "server.address", "server.port", "url.full"), "required")
    elif "messaging.system" in a:  # messaging/messaging-spans.md
        need(("messaging.operation.name", "messaging.system"), "required")
        need(("messaging.destination.name",), "conditionally required")
        if "messaging.operation.name" in a and "messaging.destination.name" in a:
            named(f"{a['messaging.operation.name']} {a['messaging.destination.name']}",
                  "{messaging.operation.name} {destination}")
    elif "db.system.name" in a:  # database/database-spans.md, redis.md
        need(("db.system.name", "db.operation.name"), "required")
        if "db.operation.name" in a and not s.name.startswith(str(a["db.operation.name"])):
            out.append(f"{where}: name should start with db.operation.name ({a['db.operation.name']!r})")
        if "db.operation.batch.size" in a and (s.name, a.get("db.operation.name")) != ("PIPELINE", "PIPELINE"):
            out.append(f"{where}: a Redis pipeline is named and operated PIPELINE (redis.md)")
    elif op in ("chat", "text_completion", "generate_content", "embeddings"):  # gen-ai-spans.md, Inference
        need(("gen_ai.operation.name", "gen_ai.provider.name"), "required")
        named(f"{op} {a.get('gen_ai.request.model')}", "{gen_ai.operation.name} {gen_ai.request.model}")
        if "server.address" in a:
            need(("server.port",), "conditionally required (server.address set)")
        if s.kind != "CLIENT":
            out.append(f"{where}: inference spans are CLIENT")
    elif op == "invoke_agent":  # gen-ai-agent-spans.md, invoke_agent (internal)
        need(("gen_ai.operation.name",), "required")
        named(f"invoke_agent {a['gen_ai.agent.name']}" if "gen_ai.agent.name" in a else "invoke_agent",
              "invoke_agent {gen_ai.agent.name}")
        model = str(a.get("gen_ai.request.model", ""))
        if "/" in model:
            out.append(f"{where}: gen_ai.request.model {model!r} carries a routing prefix")
    elif op == "execute_tool":  # gen-ai-agent-spans.md, execute_tool
        need(("gen_ai.operation.name", "gen_ai.tool.name"), "required")
        named(f"execute_tool {a.get('gen_ai.tool.name')}", "execute_tool {gen_ai.tool.name}")
        if s.kind != "INTERNAL":
            out.append(f"{where}: execute_tool spans are INTERNAL")
        p = by_id.get(s.parent_id)
        while p is not None:
            if p.attributes.get("gen_ai.operation.name") == "invoke_agent":
                need(("gen_ai.agent.name",), "conditionally required (inside an agent)")
                break
            p = by_id.get(p.parent_id)
    if s.error and any(k.split(".")[0] in ("http", "messaging", "db", "gen_ai") for k in a) and "error.type" not in a:
        out.append(f"{where}: failed operation without error.type")


def check_metric(m: Metric, out: list[str]) -> None:
    where = f"metric {m.name!r}"
    if _ours(m.name):
        return
    spec = METRICS.get(m.name) or GENAI_METRICS.get(m.name)
    if spec is None:
        out.append(f"{where}: in no registry")
        return
    kind, unit = spec
    if m.unit != unit:
        out.append(f"{where}: unit {m.unit!r}, the registry says {unit!r}")
    if m.kind != kind and not (kind == "up_down_counter" and m.kind == "gauge"):
        out.append(f"{where}: instrument {m.kind}, the registry says {kind}")
    if m.name in METRIC_DEPRECATED:
        out.append(f"{where}: deprecated ({METRIC_DEPRECATED[m.name].splitlines()[0][:80]})")
    for b in m.bounds:
        if m.name in ADVISED_BUCKETS and [float(x) for x in b] != [float(x) for x in ADVISED_BUCKETS[m.name]]:
            out.append(f"{where}: buckets {b} differ from the advised {ADVISED_BUCKETS[m.name]}")
    for p in m.points:
        for k, v in p.items():
            check_attribute(where, k, v, out)
        for k in METRIC_REQUIRED.get(m.name, ()):
            if k not in p:
                out.append(f"{where}: point {p} lacks required {k!r}")
        if "server.address" in p and m.name.startswith("gen_ai.client.") and "server.port" not in p:
            out.append(f"{where}: server.port is required with server.address")
        if m.name == "http.server.request.duration" and int(p.get("http.response.status_code", 0)) >= 500 \
                and "error.type" not in p:
            out.append(f"{where}: 5xx point without error.type")


_TB_LAST = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def check_log(attrs: dict[str, Any], event_name: str, out: list[str]) -> None:
    where = f"log {event_name or attrs.get('code.function.name', '')!r}"
    for k, v in attrs.items():
        if "." in k:  # keys without a dot are the application's own structured fields
            check_attribute(where, k, v, out)
    st = attrs.get("exception.stacktrace")
    if isinstance(st, str):
        if st.lstrip().startswith(("[", "{")):
            out.append(f"{where}: exception.stacktrace is not the language's traceback text")
        if re.search(r"""['"]locals['"]\s*:""", st):
            out.append(f"{where}: exception.stacktrace carries local variables")
        last = st.strip().splitlines()[-1] if st.strip() else ""
        m = _TB_LAST.match(last)
        # Python's traceback prints the exception's qualified name on its last line.
        if m and attrs.get("exception.type") != m.group(1):
            out.append(f"{where}: exception.type {attrs.get('exception.type')!r} != traceback's {m.group(1)!r}")


def check_resource(res: dict[str, Any], out: list[str]) -> None:
    for k, v in res.items():
        check_attribute("resource", k, v, out)
    if "service.name" not in res:
        out.append("resource: missing required service.name")
    sid = res.get("service.instance.id")
    if sid is None:  # recommended, not required
        return
    try:
        ok = uuid.UUID(str(sid)).version in (4, 5)  # service.md: SHOULD be a UUID v4 or v5
    except ValueError:
        ok = False
    if not ok:
        out.append(f"resource: service.instance.id {sid!r} is not a UUID v4/v5")
