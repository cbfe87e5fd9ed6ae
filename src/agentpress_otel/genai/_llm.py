"""``{operation} {model}`` (CLIENT) spans for LLM calls, with usage, cost, streaming timings and (opt-in) content.

While an LLM span is active we also set util-genai's inference context key, so util-genai based
OpenAI/Anthropic instrumentations underneath suppress their duplicate span.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import traceback
from collections.abc import Sequence
from time import perf_counter as _perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

from agentpress_otel import _context, _selftel
from agentpress_otel._text import field
from agentpress_otel.genai import _content, _semconv, _state, _usage, prices
from agentpress_otel.genai._agent import AgentRun, active_agent, model_text
from agentpress_otel.genai._op import Op
from agentpress_otel.genai._request import CONTENT_PARAMS, request_attributes

#: Our own "an LLM span is active" context key (integrations skip nested calls, e.g. Router -> acompletion).
LLM_ACTIVE_KEY = otel_context.create_key("agentpress_otel.genai.llm_active")
#: util-genai 1.3b0's key: when set, util-genai based SDK instrumentations suppress their inference span.
UTIL_GENAI_INFERENCE_KEY = "opentelemetry.genai.client.inference.context"

_G_LLM = _selftel.guard("genai.llm")
_G_CONTENT = _selftel.guard("genai.content")
_G_EVENT = _selftel.guard("genai.event")

_util_data: Any = None
_util_loaded = False


def _util_genai_data() -> Any:
    """The value that makes util-genai suppress nested inference spans (None if util-genai is not in use).

    One shared ``InferenceData``: suppressed invocations only merge their attributes into it and we never
    read it back, so sharing is harmless and saves a dataclass per call.
    """
    global _util_data, _util_loaded
    # Only instrumentations built on util-genai read the key; if none imported it, skip the work.
    if "opentelemetry.util.genai.handler" not in sys.modules:
        return None
    if not _util_loaded:
        _util_loaded = True
        try:
            from opentelemetry.util.genai._inference_invocation import InferenceData

            _util_data = InferenceData()
        except (ImportError, TypeError):  # util-genai's private module moved: no suppression of SDK spans
            _util_data = None
    return _util_data


# (operation, provider, model, response model, error type, server address, server port, latest names)
# -> cached metric attribute dicts
_MetricKey = tuple[str, str, str, str | None, str | None, str | None, int | None, bool]
_MetricAttrs = tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]
_metric_cache: dict[_MetricKey, _MetricAttrs] = {}

#: A stream's time-per-output-chunk values are its first this many gaps between chunks (bounded memory).
MAX_CHUNK_GAPS = 4096


def _metric_attrs(key: _MetricKey) -> _MetricAttrs:
    hit = _metric_cache.get(key)
    if hit is not None:
        return hit
    op, provider, model, resp_model, err, server, port, latest = key
    base: dict[str, Any] = {"gen_ai.operation.name": op, "gen_ai.provider.name": provider,
                            "gen_ai.request.model": model}
    if resp_model:
        base["gen_ai.response.model"] = resp_model
    if server:
        base["server.address"] = server
        if port:
            base["server.port"] = port  # conditionally required when server.address is set
    # Semconv lists error.type for the duration metric only; token usage is about billed tokens.
    if latest:
        # The token counters are keyed by modality; we do not split a call's tokens by modality.
        inp = out = {**base, _semconv.TOKEN_MODALITY: "unknown"}
    else:
        inp = {**base, _semconv.TOKEN_TYPE: "input"}
        out = {**base, _semconv.TOKEN_TYPE: "output"}
    if err:
        base["error.type"] = err
    cost = {"gen_ai.provider.name": provider, "gen_ai.request.model": model}
    if len(_metric_cache) > 2048:  # unbounded model strings must not grow memory
        _metric_cache.clear()
    _metric_cache[key] = (base, inp, out, cost)
    return base, inp, out, cost


class LLMCall(Op):
    """``{operation} {model}`` (CLIENT) with usage, cost and (opt-in) content. See :func:`llm_call`.

    Besides ``with``/``async with`` and the decorator form, integrations drive it with the public lifecycle
    (:meth:`start`, :meth:`activate`/:meth:`deactivate` or :meth:`activated`, :meth:`chunk`, :meth:`end`).

    Example::

        async with llm_call(model="gpt-5-mini", provider="openai", temperature=0.2) as call:
            resp = await client.chat.completions.create(...)
            call.record_usage(resp.usage)
            call.set_response(model=resp.model, id=resp.id, finish_reasons=["stop"])
    """

    _kind = SpanKind.CLIENT

    def __init__(self, *, model: str, provider: str, operation: str = "chat", server_address: str | None = None,
                 server_port: int | None = None, capture_content: bool | None = None,
                 suppress_nested: bool = True, **request_params: Any) -> None:
        super().__init__()
        self.model = model_text(model) or "unknown"
        self.provider = provider or "unknown"
        self.operation = operation
        self.server_address = server_address
        self.server_port = server_port
        self.request_params = request_params
        self._set_capture(capture_content)
        self._suppress_nested = suppress_nested
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.cost_usd: float | None = None
        self._ttfc_set: float | None = None
        # perf_counter() of the first MAX_CHUNK_GAPS + 1 chunks: the first gives the time to first chunk, the
        # differences the time per output chunk (computed when the metrics are recorded, not per chunk). The
        # LiteLLM stream proxy appends to it directly while it is not full (chunks counts it either way).
        self._chunk_times: list[float] = []
        self._chunks_past = 0  # chunks after the first MAX_CHUNK_GAPS + 1
        self._agent: AgentRun | None = None
        # Numbers this call's HTTP requests (the httpx integration folds the first into this span); next() on a
        # count is atomic, so threads sharing the call's context cannot both take the first.
        self._http_seq = itertools.count(1)

    def _clone(self) -> LLMCall:
        return LLMCall(model=self.model, provider=self.provider, operation=self.operation,
                       server_address=self.server_address, server_port=self.server_port,
                       capture_content=self._capture_arg, suppress_nested=self._suppress_nested,
                       **self.request_params)

    def _span_name(self) -> str:
        return f"{self.operation} {self.model}"

    def _start_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.model,
        }
        if self.server_address:
            attrs["server.address"] = self.server_address
            if self.server_port:
                attrs["server.port"] = self.server_port
        self._agent = active_agent()
        ids = _context.get_ids_raw()
        if ids:
            tid = ids.get("thread_id")
            if tid:
                attrs["gen_ai.conversation.id"] = tid
        p = self.request_params
        if p:
            try:
                request_attributes(p, attrs, capture=self.capture)
            except Exception as exc:  # noqa: BLE001 - hot path (every call): a try costs nothing, the guard's with ~0.2 µs
                _selftel.swallow("genai.span", exc)
            finally:
                if "messages" in p or "tools" in p:  # CONTENT_PARAMS, spelled out on the hot path
                    # Content (if captured) is in attrs now. Keeping the caller's whole thread history
                    # referenced from this call (and every Context copy holding it) would only retain memory.
                    self.request_params = {k: v for k, v in p.items() if k not in CONTENT_PARAMS}
        return attrs

    def _context_values(self) -> dict[str, Any]:
        vals: dict[str, Any] = {LLM_ACTIVE_KEY: self}
        if self._suppress_nested:
            data = _util_genai_data()
            if data is not None:
                vals[UTIL_GENAI_INFERENCE_KEY] = data
        return vals

    # --- setters
    def set_usage(self, *, input_tokens: int | None = None, output_tokens: int | None = None,
                  cache_read_tokens: int | None = None, cache_write_tokens: int | None = None,
                  reasoning_tokens: int | None = None, estimated: bool = False) -> None:
        """Token usage (``input_tokens`` includes cached ones, ``output_tokens`` includes reasoning).

        Values that are not non-negative whole numbers (NaN, "abc", lists, negatives) are ignored and
        counted; numeric strings and floats are converted.

        Example::

            call.set_usage(input_tokens=1200, output_tokens=80, cache_read_tokens=1000)
        """
        try:
            a = self._attrs
            for name, value, attr in (
                ("input_tokens", input_tokens, "gen_ai.usage.input_tokens"),
                ("output_tokens", output_tokens, "gen_ai.usage.output_tokens"),
                ("cache_read_tokens", cache_read_tokens, "gen_ai.usage.cache_read.input_tokens"),
                ("cache_write_tokens", cache_write_tokens, _usage.cache_write_attr()),
                ("reasoning_tokens", reasoning_tokens, "gen_ai.usage.reasoning.output_tokens"),
            ):
                if value is not None and (n := _usage.count(name, value)) is not None:
                    setattr(self, name, n)
                    a[attr] = n
            if estimated:
                a["agentpress.usage.estimated"] = True
        except Exception as exc:  # noqa: BLE001 - hot path (every call): a try costs nothing, the guard's with ~0.2 µs
            _selftel.swallow("genai.llm", exc)

    def set_response(self, *, model: str | None = None, id: str | None = None,
                     finish_reasons: Sequence[str] | str | None = None) -> None:
        """Response model, id and finish reasons (a single string counts as one reason).

        Example::

            call.set_response(model="gpt-5-2025-08-07", id="chatcmpl-1", finish_reasons=["stop"])
        """
        try:
            if model:
                self.response_model = str(model)
                self._attrs["gen_ai.response.model"] = self.response_model
            if id:
                self.response_id = str(id)
                self._attrs["gen_ai.response.id"] = self.response_id
            fr = _usage.finish_reasons(finish_reasons)
            if fr:
                self._attrs["gen_ai.response.finish_reasons"] = fr
        except Exception as exc:  # noqa: BLE001 - hot path (every call): a try costs nothing, the guard's with ~0.2 µs
            _selftel.swallow("genai.llm", exc)

    def record_usage(self, usage: Any) -> bool:
        """Read a ``usage`` object or dict; returns False when it has no counts. Understood shapes:

        * OpenAI Chat Completions / LiteLLM: ``prompt_tokens`` (includes cached), ``completion_tokens``,
          ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``, and
          LiteLLM's ``cache_read_input_tokens``/``cache_creation_input_tokens``;
        * OpenAI Responses: ``input_tokens`` (includes cached), ``output_tokens``,
          ``input_tokens_details.cached_tokens``, ``output_tokens_details.reasoning_tokens``;
        * Anthropic Messages: ``input_tokens`` *excludes* the cache, so ``gen_ai.usage.input_tokens`` =
          ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` (semconv, anthropic.md).

        Example::

            call.record_usage(resp.usage)
        """
        with _G_LLM:
            counts = _usage.read_usage(usage)
            if counts is None:
                return False
            self.set_usage(**counts)
            return True
        return False

    def record_response(self, resp: Any) -> None:
        """Read usage, model, id, finish reasons (and output messages when capturing) from an
        OpenAI/LiteLLM-shaped chat completion (object or dict). Decorated functions get this for free.

        Example::

            async with llm_call(model="gpt-5", provider="openai") as call:
                call.record_response(await client.chat.completions.create(...))
        """
        with _G_LLM:
            choices = field(resp, "choices")
            if not isinstance(choices, (list, tuple)):  # an odd shape: nothing to read, not an error
                choices = []
            finish = _usage.choice_finish_reasons(choices)
            self.set_response(model=field(resp, "model"), id=field(resp, "id"), finish_reasons=finish)
            self.record_usage(field(resp, "usage"))
            self.record_openai_fields(resp)
            if self.capture and choices:
                self.set_output_messages([field(c, "message") for c in choices], finish_reasons=finish)

    def record_openai_fields(self, resp: Any) -> None:
        """``openai.response.system_fingerprint`` / ``service_tier`` (openai.md: recommended when returned)
        from a response or a streamed chunk.

        Example::

            call.record_openai_fields(first_chunk)
        """
        for name, attr in (("system_fingerprint", "openai.response.system_fingerprint"),
                           ("service_tier", "openai.response.service_tier")):
            v = field(resp, name)
            if isinstance(v, str) and v:
                self._attrs[attr] = v

    def _on_return(self, value: Any) -> None:
        if value is not None and field(value, "choices") is not None:
            self.record_response(value)

    def set_input_messages(self, messages: Any) -> None:
        """OpenAI-style messages; recorded (converted, truncated, redacted) only when capture is on.

        Example::

            call.set_input_messages([{"role": "user", "content": "hi"}])
        """
        if self.capture and messages is not None:
            with _G_CONTENT:
                self._attrs["gen_ai.input.messages"] = _content.prepare(_content.convert_messages(messages))

    def set_output_messages(self, messages: Any, *, finish_reasons: Sequence[str] | str | None = None) -> None:
        """Output messages (e.g. ``[choice.message]``); recorded only when capture is on.

        Example::

            call.set_output_messages([resp.choices[0].message], finish_reasons=["stop"])
        """
        if self.capture and messages is not None:
            with _G_CONTENT:
                fr = _usage.finish_reasons(finish_reasons)
                self._attrs["gen_ai.output.messages"] = _content.prepare(
                    _content.convert_messages(messages, finish_reasons=fr))

    def set_system_instructions(self, text: Any) -> None:
        """System prompt; recorded only when capture is on.

        Example::

            call.set_system_instructions("You are terse.")
        """
        if self.capture and text is not None:
            with _G_CONTENT:
                self._attrs["gen_ai.system_instructions"] = _content.prepare([{"type": "text", "content": text}])

    def chunk(self, now: float | None = None) -> None:
        """Call once per streamed chunk: the first sets time to first chunk, the rest the per-chunk gaps.

        ``now`` is a ``time.perf_counter()`` value; anything else unusable is counted and replaced by now.
        Gaps are kept for the first :data:`MAX_CHUNK_GAPS` gaps of a stream.

        Example::

            for chunk in stream:
                call.chunk()
        """
        times = self._chunk_times
        if len(times) > MAX_CHUNK_GAPS:  # the gaps are complete: only counted from here on
            self._chunks_past += 1
        elif now is None:  # the per-chunk path of every stream: one timestamp appended
            times.append(_perf_counter())
        else:
            checked = _usage.seconds("chunk(now)", now)
            times.append(_perf_counter() if checked is None else checked)

    @property
    def chunks(self) -> int:
        """How many times :meth:`chunk` was called."""
        return len(self._chunk_times) + self._chunks_past

    def set_time_to_first_chunk(self, seconds: float) -> None:
        """Set the time to first chunk directly (when timing is measured elsewhere); bad values are counted.

        Example::

            call.set_time_to_first_chunk(0.42)
        """
        v = _usage.seconds("time_to_first_chunk", seconds)
        if v is not None and v >= 0:
            self._ttfc_set = v
        elif v is not None:
            _usage.invalid("time_to_first_chunk", seconds)

    @property
    def time_to_first_chunk(self) -> float | None:
        """Seconds from :meth:`start` to the first :meth:`chunk` (or the value set directly)."""
        if self._ttfc_set is not None:
            return self._ttfc_set
        times = self._chunk_times
        return times[0] - self._t0 if times else None

    def set_attribute(self, key: str, value: Any) -> None:
        """Any extra span attribute (set when the span ends).

        Example::

            call.set_attribute("agentpress.llm.deployment_model", "gpt-5-mini")
        """
        self._attrs[key] = value

    def _cost(self) -> tuple[float | None, bool]:
        """(cost in USD, unpriced) from the usage and the price table; (None, False) without usage."""
        if self.input_tokens is None and self.output_tokens is None:
            return None, False
        price = (self.response_model and prices.lookup(self.response_model)) or prices.lookup(self.model)
        if price is None:
            return None, True
        cost = prices.price_cost(
            price, input_tokens=self.input_tokens or 0, output_tokens=self.output_tokens or 0,
            cache_read_tokens=self.cache_read_tokens or 0, cache_write_tokens=self.cache_write_tokens or 0,
        )
        self.cost_usd = cost
        self._attrs["agentpress.llm.cost_usd"] = cost
        self._attrs["agentpress.llm.prices_version"] = prices.PRICES_VERSION
        return cost, False

    def _on_end(self, duration: float, exc: BaseException | None) -> None:
        ins = _state.STATE.instruments
        base, inp, out, cost_attrs = _metric_attrs(
            (self.operation, self.provider, self.model, self.response_model, self._error, self.server_address,
             self.server_port if self.server_address else None, ins.latest))
        if exc is not None and not isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
            _exception_event(self.span, exc)
        if self._agent is not None:
            self._agent._roll_up(self)
        ttfc = self.time_to_first_chunk
        if ttfc is not None:
            self._attrs["gen_ai.response.time_to_first_chunk"] = ttfc
        cost, unpriced = self._cost()
        # Exemplars (trace links) only on duration/TTFC: an exemplar offer per record is not free.
        sc = self.span.get_span_context()
        # The record keeps only the span context (exemplars): never this call or its Context.
        detail = ((self.cache_read_tokens, self.cache_write_tokens, self.reasoning_tokens) if ins.latest else None)
        ins.record_llm(_state.LLMRecord(
            duration, ttfc, self._chunk_times, self.input_tokens, self.output_tokens, cost, unpriced,
            base, inp, out, cost_attrs, sc, detail))
        if sc.is_valid:
            entry = (sc, self.provider, self.model)
            _usage.SPANS.put(sc.span_id, entry)
            if self.response_id:
                _usage.RESPONSES.put(self.response_id, entry)


def _exception_event(span: Span, exc: BaseException) -> None:
    """``gen_ai.client.operation.exception`` (recommended, severity WARN) for a failed GenAI call.

    A log record parented to the call's span, when a logger provider is configured.
    """
    logger = _state.STATE.event_logger
    if logger is None:
        return
    with _G_EVENT:
        qualified = _selftel.qualified_name(type(exc))
        attrs: dict[str, Any] = _context.ids_as_attributes(_context.current_ids())  # as every log record has
        attrs.update({"exception.type": qualified, "exception.message": str(exc)[:1024],
                      "exception.stacktrace": "".join(traceback.format_exception(exc))[-8192:]})
        logger.emit(event_name="gen_ai.client.operation.exception", severity_number=SeverityNumber.WARN,
                    severity_text="WARN", context=trace.set_span_in_context(span), body=None, attributes=attrs)


def llm_call(*, model: str, provider: str, operation: str = "chat", server_address: str | None = None,
             server_port: int | None = None, capture_content: bool | None = None,
             **request_params: Any) -> LLMCall:
    """Span ``{operation} {model}`` (CLIENT) for one logical LLM call, retries included, plus its metrics.

    ``request_params`` are the call's parameters (``temperature``, ``max_tokens``, ``stream``,
    ``messages``...); messages are recorded only when content capture is on.

    Example::

        async with llm_call(model="gpt-5-mini", provider="openai", temperature=0) as call:
            resp = await client.chat.completions.create(...)
            call.set_usage(input_tokens=resp.usage.prompt_tokens, output_tokens=resp.usage.completion_tokens)
            call.set_response(model=resp.model, id=resp.id, finish_reasons=["stop"])
    """
    return LLMCall(model=model, provider=provider, operation=operation, server_address=server_address,
                   server_port=server_port, capture_content=capture_content, **request_params)


def current_llm_call(ctx: Context | None = None) -> LLMCall | None:
    """The :class:`LLMCall` whose span is active here, if any (integrations use it to skip nested calls).

    Example::

        if current_llm_call() is not None:
            return wrapped(*args, **kwargs)  # already inside a traced call
    """
    v = otel_context.get_value(LLM_ACTIVE_KEY, ctx)
    return v if isinstance(v, LLMCall) else None
