"""The one stream proxy of the LiteLLM integration and the usage estimate of streams without a usage chunk.

Private to :mod:`agentpress_otel.integrations.litellm`, which returns every LiteLLM stream (``completion``,
``acompletion``, Router) inside :class:`_Stream`.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from time import perf_counter
from typing import Any, cast

import wrapt

from agentpress_otel import _selftel
from agentpress_otel._text import field as _get
from agentpress_otel.genai import LLMCall
from agentpress_otel.genai._llm import MAX_CHUNK_GAPS

#: Usage estimates count at most this many characters per text with the tokenizer (0.5-2 ms; a 100k-token
#: history took 15-27 ms) and extrapolate the rest by the sample's tokens per character: the estimate runs
#: on the event loop when a stream ends.
ESTIMATE_SAMPLE_CHARS = 8_000

_warmed = False

_G = _selftel.guard("litellm")
_G_TOKENS = _selftel.guard("litellm.token_counter")
_G_CLOSE = _selftel.guard("litellm.stream_close")


_EMPTY: dict[str, Any] = {}
_MODEL_TYPES: dict[type, bool] = {}
# Keys read from views (here and by LLMCall.record_response/record_usage on flattened objects).
_READ_KEYS = ("id", "model", "usage", "choices", "finish_reason", "delta", "content", "tool_calls", "message",
              "system_fingerprint", "service_tier", "prompt_tokens", "completion_tokens", "prompt_tokens_details",
              "completion_tokens_details", "cache_read_input_tokens", "cache_creation_input_tokens", "input_tokens",
              "output_tokens", "input_tokens_details", "output_tokens_details")


class _FieldView:
    """``.get(key)`` through :func:`agentpress_otel._text.field`, for shapes :func:`_view` cannot flatten."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def get(self, key: str) -> Any:
        return _get(self.obj, key)


def _is_model(t: type) -> bool:
    """Whether ``t`` is a pydantic model none of whose keys we read is a property (those live in neither dict)."""
    hit = _MODEL_TYPES.get(t)
    if hit is None:
        hit = _MODEL_TYPES[t] = isinstance(getattr(t, "__pydantic_fields__", None), dict) and not any(
            isinstance(getattr(t, k, None), property) for k in _READ_KEYS)
    return hit


def _view(obj: Any) -> dict[str, Any] | _FieldView:
    """The fields of a response or its ``usage`` as one mapping, read with ``.get(key)`` (None when absent).

    LiteLLM's objects are pydantic models keeping most fields in ``__pydantic_extra__``: reading a dozen
    keys one by one through ``field`` cost about 6 µs per object; one flattened dict costs a fraction.
    Anything else (SDK objects with properties, mappings) is read key by key as before. Stream chunks,
    of which only two or three fields are read each, go through :func:`_pair` instead (no merged dict).
    """
    if obj is None:
        return _EMPTY
    t = type(obj)
    if t is dict:
        return cast("dict[str, Any]", obj)
    if _is_model(t):
        d: dict[str, Any] = obj.__dict__
        extra: dict[str, Any] | None = obj.__pydantic_extra__
        if not extra:
            return d
        return {**d, **extra} if d else extra
    return _FieldView(obj)


def _pair(obj: Any, a: str, b: str) -> tuple[Any, Any]:
    """Fields ``a`` and ``b`` of a chunk, choice or delta, as :func:`~agentpress_otel._text.field` reads them.

    On a pydantic model it reads the model's ``__dict__`` and then its extras directly (no merged dict, no
    pydantic ``__getattr__``); dicts and None cost one check. The first object of each type comes here (which
    records whether it is such a model); :meth:`_StreamState.observe` inlines the same reads for the rest.
    """
    t = type(obj)
    if t is dict:
        return obj.get(a), obj.get(b)
    if obj is None:
        return None, None
    if not _is_model(t):
        return _get(obj, a), _get(obj, b)
    d, extra = obj.__dict__, obj.__pydantic_extra__ or _EMPTY
    return (d[a] if a in d else extra.get(a)), (d[b] if b in d else extra.get(b))


def flat(obj: Any) -> Any:
    """``obj`` as one plain dict when :func:`_view` can flatten it (a new dict or the model's own ``__dict__``:
    read it, never write to it), else ``obj`` itself. ``usage`` inside is flattened too.

    LLMCall's readers (``record_response``, ``record_usage``) take dicts and objects alike; on a LiteLLM
    response, a dict spares them pydantic's attribute fallbacks (tens of µs per response).
    """
    v = _view(obj)
    if isinstance(v, _FieldView):
        return obj
    usage = v.get("usage")
    if usage is not None:
        u = _view(usage)
        if not isinstance(u, _FieldView):
            v = {**v, "usage": u}
    return v


class _StreamState:
    """Per-stream accumulation; owned by the proxy, ended by it or by the GC finalizer."""

    __slots__ = (
        "__weakref__",
        "call",
        "done",
        "finish",
        "messages",
        "model",
        "next",
        "resp_id",
        "resp_model",
        "text",
        "times",
        "tools",
        "usage_seen",
    )

    def __init__(self, call: LLMCall, model: str, messages: Any) -> None:
        self.call = call
        self.model = model
        self.messages = messages
        self.usage_seen = False
        self.text: list[str] = []
        self.tools: dict[int, list[Any]] = {}  # index -> [id, name, argument fragments]
        self.finish: list[str] = []
        self.resp_id: str | None = None
        self.resp_model: str | None = None
        self.done = False
        # The wrapped stream's bound __next__/__anext__, set at the first step: the proxy's per-chunk path reads
        # its state from here (a slot) rather than from the wrapt proxy (whose attribute reads cost 5x).
        self.next: Any = None
        self.times = call._chunk_times  # the stamps call.chunk() appends to (the time per output chunk comes from them)

    def observe(self, chunk: Any) -> None:
        # Runs for every chunk, so the reads of _pair are inlined for LiteLLM's pydantic models (a model type
        # is in _MODEL_TYPES once _pair has seen it): a function call per object read cost ~0.3 µs a chunk.
        call = self.call
        try:
            times = self.times
            if len(times) <= MAX_CHUNK_GAPS:  # what call.chunk() does, without the call
                times.append(perf_counter())
            else:
                call.chunk()
            if _MODEL_TYPES.get(type(chunk)):
                d, extra = chunk.__dict__, chunk.__pydantic_extra__ or _EMPTY
                choices = d["choices"] if "choices" in d else extra.get("choices")
                usage = d["usage"] if "usage" in d else extra.get("usage")
            else:
                choices, usage = _pair(chunk, "choices", "usage")
            if self.resp_id is None:  # until a chunk has one (the first): response-level fields
                self._first(chunk)
            if usage is not None and call.record_usage(flat(usage)):
                self.usage_seen = True
            if type(choices) is list or isinstance(choices, (list, tuple)):  # odd shapes are skipped
                for c in choices:
                    self._choice(c)
        except Exception as exc:  # noqa: BLE001 - per chunk: a try costs nothing, the guard's with ~0.2 µs
            _selftel.swallow("litellm", exc)

    def _choice(self, c: Any) -> None:
        delta: Any
        if _MODEL_TYPES.get(type(c)):  # as in observe
            d, extra = c.__dict__, c.__pydantic_extra__ or _EMPTY
            fr = d["finish_reason"] if "finish_reason" in d else extra.get("finish_reason")
            delta = d["delta"] if "delta" in d else extra.get("delta")
        else:
            fr, delta = _pair(c, "finish_reason", "delta")
        if fr:
            self.finish.append(str(fr))
        if _MODEL_TYPES.get(type(delta)):
            d, extra = delta.__dict__, delta.__pydantic_extra__ or _EMPTY
            content = d["content"] if "content" in d else extra.get("content")
            tool_calls = d["tool_calls"] if "tool_calls" in d else extra.get("tool_calls")
        else:
            content, tool_calls = _pair(delta, "content", "tool_calls")
        if content and isinstance(content, str):
            self.text.append(content)
        if tool_calls and isinstance(tool_calls, (list, tuple)):
            for tc in tool_calls:
                self._tool_delta(tc)

    def _first(self, chunk: Any) -> None:
        self.resp_id, self.resp_model = _pair(chunk, "id", "model")
        self.call.record_openai_fields(chunk)

    def _tool_delta(self, tc: Any) -> None:
        # OpenAI-style deltas: the first for an index has id and name, the rest argument fragments.
        idx = _get(tc, "index")
        tc_id = _get(tc, "id")
        if not isinstance(idx, int):
            idx = len(self.tools) if tc_id or not self.tools else max(self.tools)
        entry = self.tools.get(idx)
        if entry is None:
            entry = self.tools[idx] = [None, None, []]
        fn = _get(tc, "function")
        name, args = _get(fn, "name"), _get(fn, "arguments")
        if tc_id and not entry[0]:
            entry[0] = str(tc_id)
        if name and not entry[1]:
            entry[1] = str(name)
        if args:
            entry[2].append(str(args))

    def _tool_calls(self) -> list[dict[str, Any]]:
        return [{"id": e[0], "type": "function", "function": {"name": e[1], "arguments": "".join(e[2])}}
                for _, e in sorted(self.tools.items())]

    def finish_stream(self, exc: BaseException | None = None, *, closed_early: bool = False) -> None:
        if self.done:
            return
        self.done = True
        call = self.call
        try:
            with _G:
                call.set_response(model=self.resp_model, id=self.resp_id, finish_reasons=self.finish or None)
                if closed_early:
                    call.set_attribute("agentpress.closed_early", True)
                if not self.usage_seen:
                    self._estimate()
                if call.capture and (self.text or self.tools):
                    msg: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
                    if self.tools:  # tool_call parts, as for a non-streamed response
                        msg["tool_calls"] = self._tool_calls()
                    call.set_output_messages([msg], finish_reasons=self.finish or None)
        finally:
            # Nothing needs the request history or the streamed text any more; the proxy may live on.
            self.messages = None
            self.text = []
            self.tools = {}
            call.end(exc)

    def _estimate(self) -> None:
        with _G_TOKENS:
            import litellm

            out = "".join(self.text) + "".join(
                f"{e[1] or ''}{''.join(e[2])}" for e in self.tools.values())
            pt = _estimate_tokens(litellm, self.model, messages=self.messages or [])
            ct = _estimate_tokens(litellm, self.model, text=out) if out else 0
            self.call.set_usage(input_tokens=pt, output_tokens=ct, estimated=True)


def _estimate_tokens(litellm: Any, model: str, *, text: str | None = None, messages: Any = None) -> int:
    """``litellm.token_counter``, exact up to :data:`ESTIMATE_SAMPLE_CHARS`, extrapolated beyond.

    Past the limit, ``ESTIMATE_SAMPLE_CHARS`` characters taken in 8 slices spread over the whole text are
    counted and scaled by total length (so the tokens-per-character of the mix of system prompt, code,
    prose or CJK text is kept); for messages, 3 tokens per message plus 3 are added, as OpenAI's chat
    format does. Approximate either way: such spans carry ``agentpress.usage.estimated=true``.
    """
    if messages is not None:
        pieces = _message_texts(messages)
        total = sum(len(p) for p in pieces)
        if total <= ESTIMATE_SAMPLE_CHARS:
            return int(litellm.token_counter(model=model, messages=messages))
        text = "".join(pieces)
        overhead = 3 * len(messages) + 3
    else:
        text = text or ""
        overhead = 0
    if len(text) <= ESTIMATE_SAMPLE_CHARS:
        return int(litellm.token_counter(model=model, text=text)) + overhead
    k = 8
    width = ESTIMATE_SAMPLE_CHARS // k
    step = (len(text) - width) / (k - 1)
    sample = "".join(text[int(i * step):int(i * step) + width] for i in range(k))
    n = int(litellm.token_counter(model=model, text=sample))
    return round(n * len(text) / len(sample)) + overhead


def _message_texts(messages: Any) -> list[str]:
    """The text in OpenAI-style messages (string contents, text parts, tool-call names and arguments)."""
    out: list[str] = []
    for m in messages if isinstance(messages, (list, tuple)) else [messages]:
        content = _get(m, "content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, (list, tuple)):
            for part in content:
                t = _get(part, "text")
                if isinstance(t, str):
                    out.append(t)
        for tc in _get(m, "tool_calls") or ():
            fn = _get(tc, "function")
            for v in (_get(fn, "name"), _get(fn, "arguments")):
                if isinstance(v, str):
                    out.append(v)
    return out


def _finalize(state: _StreamState, wrapped: Any = None) -> None:
    # Runs when an abandoned stream's proxy is freed: end the span, never raise.
    if not state.done:
        state.finish_stream(closed_early=True)
    if wrapped is not None:
        # A dropped sync stream is closed here, normally in the thread that let go of it (refcounting).
        # Left to the cyclic GC, the provider's response generator is finalized in whatever thread runs the
        # collection; if that thread is inside httpcore's connection pool it deadlocks on the pool's
        # non-reentrant lock (encode/httpcore#990). Closing early returns the connection to the pool.
        with _G_CLOSE:
            close = getattr(wrapped, "close", None)
            if callable(close):
                close()


# Proxies not ended yet: id(weakref to the proxy) -> (that weakref, its state, the sync stream to close or None).
# What weakref.finalize does, at a fraction of its cost per stream (it was ~2 µs of a streamed call): this dict
# keeps each weakref alive, so its callback runs when the proxy is freed, by refcounting or by the cyclic GC (a
# weakref that is itself garbage would not call back); streams still open at interpreter exit end then.
_LIVE: dict[int, tuple[weakref.ref[Any], _StreamState, Any]] = {}
_exit_hook = False


def _track(proxy: _Stream, state: _StreamState, wrapped: Any) -> weakref.ref[Any]:
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_end_all)  # after instrument()'s own hook: runs first, so the spans are still exported
    ref = weakref.ref(proxy, _freed)
    _LIVE[id(ref)] = (ref, state, wrapped)
    return ref


def _freed(ref: weakref.ref[Any]) -> None:
    entry = _LIVE.pop(id(ref), None)
    if entry is not None:
        _finalize(entry[1], entry[2])


def _end_all() -> None:
    for key in list(_LIVE):
        entry = _LIVE.pop(key, None)
        if entry is not None:
            _finalize(entry[1], entry[2])


class _Stream(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """The one transparent proxy over a LiteLLM stream, for ``completion``, ``acompletion`` and Router alike.

    LiteLLM's ``CustomStreamWrapper`` iterates both ways (``__next__`` and ``__anext__``), so one proxy
    mirrors it; every way a stream can stop (exhaustion, error, cancellation, ``close``/``aclose``, the
    proxy being freed after a ``break``) goes through :meth:`_self_end`, and the span ends exactly once.
    """

    def __init__(self, wrapped: Any, state: _StreamState, *, is_async: bool) -> None:
        super().__init__(wrapped)
        self._self_state = state
        # Only a sync stream is closed by the finalizer (see _finalize); an async one needs an event loop.
        self._self_ref: weakref.ref[Any] | None = _track(self, state, None if is_async else wrapped)

    def _self_end(self, exc: BaseException | None = None, *, closed_early: bool = False) -> None:
        ref = self._self_ref
        if ref is not None:
            _LIVE.pop(id(ref), None)
            self._self_ref = None  # dropped with its callback, which has nothing left to do
        self._self_state.finish_stream(exc, closed_early=closed_early)

    def __iter__(self) -> _Stream:
        if not hasattr(type(self.__wrapped__), "__iter__"):  # one proxy class for both ways: refuse as the
            raise TypeError(f"{type(self.__wrapped__).__name__!r} object is not iterable")  # stream would
        return self

    def __next__(self) -> Any:
        st = self._self_state  # one read from the proxy per chunk; the rest from the state's slots
        try:
            nxt = st.next
            if nxt is None:
                nxt = st.next = iter(self.__wrapped__).__next__
            chunk = nxt()
        except StopIteration:
            self._self_end()
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        st.observe(chunk)
        return chunk

    def __aiter__(self) -> _Stream:
        if not hasattr(type(self.__wrapped__), "__aiter__"):
            raise TypeError(f"'async for' requires an object with __aiter__ method, got "
                            f"{type(self.__wrapped__).__name__}")
        return self

    async def __anext__(self) -> Any:
        st = self._self_state
        try:
            nxt = st.next
            if nxt is None:
                nxt = st.next = self.__wrapped__.__aiter__().__anext__
            chunk = await nxt()
        except StopAsyncIteration:
            self._self_end()
            raise
        except BaseException as exc:  # includes CancelledError
            self._self_end(exc)
            raise
        st.observe(chunk)
        return chunk

    def close(self) -> None:
        try:
            fn = getattr(self.__wrapped__, "close", None)
            if callable(fn):
                fn()
        finally:
            self._self_end(closed_early=True)

    async def aclose(self) -> None:
        try:
            fn = getattr(self.__wrapped__, "aclose", None)
            if callable(fn):
                await fn()
        finally:
            self._self_end(closed_early=True)

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _warm_tokenizer_once() -> None:
    """Load LiteLLM's tokenizer (0.3-0.7 s of CPU, disk reads) on a background thread, once per process,
    when the first stream that may need a usage estimate starts: its chunks take a while to arrive, and
    the estimate at its end then runs warm. Apps that never stream without ``include_usage`` never load
    it, and ``instrument()`` and the first calls pay nothing for it."""
    global _warmed
    if _warmed:
        return
    _warmed = True
    threading.Thread(target=_warm_tokenizer, name="agentpress-otel-tokenizer", daemon=True).start()


def _warm_tokenizer() -> None:
    with _G_TOKENS:
        import litellm

        litellm.token_counter(model="gpt-4o", text="warm up")
