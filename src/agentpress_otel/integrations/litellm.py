"""LiteLLM: one ``chat {model}`` span (retries included) per ``completion``/``acompletion`` call.

Patched with wrapt: ``litellm.completion``, ``litellm.acompletion``, ``Router.completion`` and
``Router.acompletion``, plus any already-imported module that did ``from litellm import acompletion``
(AgentPress's ``services.llm``). Limits: references stored elsewhere before ``instrument()`` (dicts,
closures, default arguments, ``functools.partial``) keep calling the original; modules imported after
``instrument()`` get the patched function anyway.

* Nested calls (Router -> litellm.acompletion, fallbacks) are skipped while our span is active, and the
  util-genai inference context key is set, so OpenAI/Anthropic SDK instrumentations built on util-genai
  do not add a second LLM span.
* Streams (sync and async) are returned inside a transparent ``wrapt.ObjectProxy`` that records time to
  first chunk, per-chunk gaps, finish reasons, usage and (when capturing) the text and tool calls; without
  a usage chunk, tokens are estimated (:func:`_estimate_tokens`) and ``agentpress.usage.estimated=true``
  is set. The span ends exactly once: on exhaustion, error, ``close()``/``aclose()``, cancellation, or
  when the stream is garbage-collected.
* The caller's kwargs and LiteLLM's response objects are never modified.

LiteLLM downloads its model price map at import unless ``LITELLM_LOCAL_MODEL_COST_MAP=True``. That
variable also decides which prices ``litellm.cost_per_token`` (which apps may bill with) uses, so we only
touch it when it cannot have mattered yet: if LiteLLM is not imported when :func:`instrument` runs and the
variable is unset, it is set to ``True`` (the import then stays offline and fast, and the bundled map of
the installed LiteLLM is used); an explicit value, ``False`` included, always wins, and once LiteLLM is
imported its map is already loaded and the variable is left alone. Patching is deferred to a post-import
hook, so ``instrument()`` does not import LiteLLM itself.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import wrapt

from agentpress_otel import _selftel
from agentpress_otel.genai._spans import (
    LLMCall,
    _field,
    current_llm_call,
    register_error_mapper,
    register_model_normalizer,
)

__all__ = ["NAME", "REQUIRES", "instrument", "provider_for", "uninstrument"]

# LiteLLM provider ids -> gen_ai.provider.name (semconv well-known values where they exist).
PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "xai": "x_ai",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "groq": "groq",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
    "moonshot": "moonshot_ai",
    "openrouter": "openrouter",
}

# LiteLLM exception class name -> stable error.type (low cardinality, independent of module moves).
ERROR_TYPES: dict[str, str] = {
    "RateLimitError": "rate_limit",
    "Timeout": "timeout",
    "APIConnectionError": "connection_error",
    "InternalServerError": "server_error",
    "ServiceUnavailableError": "server_unavailable",
    "BadGatewayError": "server_error",
    "AuthenticationError": "authentication_error",
    "PermissionDeniedError": "permission_denied",
    "NotFoundError": "not_found",
    "BadRequestError": "invalid_request",
    "UnprocessableEntityError": "invalid_request",
    "ContextWindowExceededError": "context_window_exceeded",
    "ContentPolicyViolationError": "content_filter",
    "BudgetExceededError": "budget_exceeded",
    "APIError": "api_error",
}

_lock = threading.Lock()
_installed = False
_hook_registered = False
_enabled = False
_patched_modules: list[tuple[Any, str, Any]] = []  # (module, attr, original)
_router_had_own: dict[str, Any] = {}
_provider_cache: dict[str, tuple[str, str]] = {}
_warmed = False

#: Usage estimates count at most this many characters per text with the tokenizer (0.5-2 ms; a 100k-token
#: history took 15-27 ms) and extrapolate the rest by the sample's tokens per character: the estimate runs
#: on the event loop when a stream ends.
ESTIMATE_SAMPLE_CHARS = 8_000


def _litellm_error_type(exc: BaseException) -> str | None:
    for cls in type(exc).__mro__:
        if cls.__module__.startswith("litellm"):
            mapped = ERROR_TYPES.get(cls.__name__)
            if mapped:
                return mapped
        elif cls.__module__.startswith("openai") and cls.__name__ == "APITimeoutError":
            return "timeout"
    if type(exc).__module__.startswith("litellm"):
        return f"litellm.{type(exc).__name__}"
    return None


def provider_for(model: str, custom_llm_provider: str | None = None) -> tuple[str, str]:
    """(semconv provider name, model without routing prefix) for a LiteLLM model string.

    Example::

        provider_for("openrouter/moonshotai/kimi-k2")  # ("openrouter", "moonshotai/kimi-k2")
    """
    key = f"{custom_llm_provider or ''}|{model}"
    hit = _provider_cache.get(key)
    if hit is not None:
        return hit
    prov = custom_llm_provider or ""
    bare = model
    try:
        import litellm

        bare, prov, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=custom_llm_provider)
    except Exception:
        if "/" in model:
            prov, bare = model.split("/", 1)
    result = (PROVIDER_NAMES.get(prov, prov or "unknown"), bare or model)
    if len(_provider_cache) > 1024:
        _provider_cache.clear()
    _provider_cache[key] = result
    return result


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _bare_model(model: str) -> str | None:
    """``agent_run(model="openai/gpt-5-mini")`` -> ``gpt-5-mini``, as the chat spans under it report it."""
    if "/" not in model or "litellm" not in sys.modules:  # never import LiteLLM just for this
        return None
    return provider_for(model)[1]


def _router_model(router: Any, model: str) -> str:
    """Router model-group name -> the LiteLLM model of its first deployment (for provider mapping)."""
    try:
        for dep in getattr(router, "model_list", None) or []:
            if dep.get("model_name") == model:
                m = (dep.get("litellm_params") or {}).get("model")
                if isinstance(m, str) and m != "*":
                    return m
    except Exception:  # noqa: S110 - best effort; fall back to the given name
        pass
    return model


_server_cache: dict[str, tuple[str | None, int | None]] = {}


def _server_for(api_base: str) -> tuple[str | None, int | None]:
    """(host, port) of an ``api_base`` URL; parsed once per distinct URL (every call repeats it)."""
    hit = _server_cache.get(api_base)
    if hit is None:
        try:
            u = urlparse(api_base)
            # server.port is conditionally required with server.address: the scheme's default if not explicit.
            hit = (u.hostname, u.port or _DEFAULT_PORTS.get(u.scheme))
        except ValueError:
            hit = (None, None)
        if len(_server_cache) > 256:
            _server_cache.clear()
        _server_cache[api_base] = hit
    return hit


def _start(kwargs: Mapping[str, Any], args: tuple[Any, ...], router: Any = None) -> LLMCall:
    model = kwargs.get("model")
    if model is None and args:
        model = args[0]
    model = str(model or "unknown")
    messages = kwargs.get("messages")
    if messages is None and len(args) > 1:
        messages = args[1]
    lookup = _router_model(router, model) if router is not None else model
    provider, bare = provider_for(lookup, kwargs.get("custom_llm_provider"))
    api_base = kwargs.get("api_base") or kwargs.get("base_url")
    server, port = _server_for(api_base) if isinstance(api_base, str) and api_base else (None, None)
    params = {k: v for k, v in kwargs.items() if k in _REQ_KEYS}
    if messages is not None:
        params["messages"] = messages
    # A LiteLLM model string is reported without its routing prefix (the provider is separate); a Router
    # model-group name is reported as is, with the deployment's model kept as an extra attribute.
    req_model = bare if lookup == model else model
    call = LLMCall(model=req_model, provider=provider, server_address=server, server_port=port, **params)
    if lookup != model:
        call.set_attribute("agentpress.llm.deployment_model", bare)
    call._start()
    return call


_REQ_KEYS = frozenset({"temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "frequency_penalty",
                       "presence_penalty", "seed", "reasoning_effort", "stream", "stop", "n", "response_format",
                       "tools"})


#: Reads a field of a dict, an SDK object or a (pydantic) LiteLLM response; None when absent.
_get = _field


def _absorb_usage(call: LLMCall, usage: Any) -> bool:
    return call.record_usage(usage)


def _absorb_response(call: LLMCall, resp: Any) -> None:
    call.record_response(resp)


# ------------------------------------------------------------------------------------------ streams

class _StreamState:
    """Per-stream accumulation; owned by the proxy, ended by it or by the GC finalizer."""

    __slots__ = (
        "__weakref__",
        "call",
        "done",
        "finish",
        "messages",
        "model",
        "resp_id",
        "resp_model",
        "text",
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

    def observe(self, chunk: Any) -> None:
        try:
            self.call.chunk()
            if self.resp_id is None:  # first chunk only: response-level fields
                self.resp_id = _get(chunk, "id")
                self.resp_model = _get(chunk, "model")
                self.call.record_openai_fields(chunk)
            if _absorb_usage(self.call, _get(chunk, "usage")):
                self.usage_seen = True
            for c in _get(chunk, "choices") or ():
                fr = _get(c, "finish_reason")
                if fr:
                    self.finish.append(str(fr))
                delta = _get(c, "delta")
                content = _get(delta, "content")
                if content:
                    self.text.append(content)
                for tc in _get(delta, "tool_calls") or ():
                    self._tool_delta(tc)
        except Exception as exc:
            _selftel.record_error("litellm", exc)

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
        except Exception as e:
            _selftel.record_error("litellm", e)
        finally:
            # Nothing needs the request history or the streamed text any more; the proxy may live on.
            self.messages = None
            self.text = []
            self.tools = {}
        call.end(exc)

    def _estimate(self) -> None:
        try:
            import litellm

            out = "".join(self.text) + "".join(
                f"{e[1] or ''}{''.join(e[2])}" for e in self.tools.values())
            pt = _estimate_tokens(litellm, self.model, messages=self.messages or [])
            ct = _estimate_tokens(litellm, self.model, text=out) if out else 0
            self.call.set_usage(input_tokens=pt, output_tokens=ct, estimated=True)
        except Exception as exc:
            _selftel.record_error("litellm.token_counter", exc)


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
        try:
            close = getattr(wrapped, "close", None)
            if callable(close):
                close()
        except Exception as exc:
            _selftel.record_error("litellm.stream_close", exc)


class _SyncStream(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Transparent proxy over a LiteLLM sync stream (``CustomStreamWrapper``)."""

    def __init__(self, wrapped: Any, state: _StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_fin = weakref.finalize(self, _finalize, state, wrapped)
        self._self_it: Any = None

    def __iter__(self) -> _SyncStream:
        return self

    def __next__(self) -> Any:
        st = self._self_state
        try:
            if self._self_it is None:
                self._self_it = iter(self.__wrapped__)
            chunk = next(self._self_it)
        except StopIteration:
            st.finish_stream()
            self._self_fin.detach()
            raise
        except BaseException as exc:
            st.finish_stream(exc)
            self._self_fin.detach()
            raise
        st.observe(chunk)
        return chunk

    def close(self) -> None:
        st = self._self_state
        try:
            fn = getattr(self.__wrapped__, "close", None)
            if callable(fn):
                fn()
        finally:
            st.finish_stream(closed_early=not st.done)
            self._self_fin.detach()

    def __enter__(self) -> _SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncStream(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Transparent proxy over a LiteLLM async stream."""

    def __init__(self, wrapped: Any, state: _StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_fin = weakref.finalize(self, _finalize, state)
        self._self_it: Any = None

    def __aiter__(self) -> _AsyncStream:
        return self

    async def __anext__(self) -> Any:
        st = self._self_state
        try:
            if self._self_it is None:
                self._self_it = self.__wrapped__.__aiter__()
            chunk = await self._self_it.__anext__()
        except StopAsyncIteration:
            st.finish_stream()
            self._self_fin.detach()
            raise
        except BaseException as exc:  # includes CancelledError
            st.finish_stream(exc)
            self._self_fin.detach()
            raise
        st.observe(chunk)
        return chunk

    async def aclose(self) -> None:
        st = self._self_state
        try:
            fn = getattr(self.__wrapped__, "aclose", None)
            if callable(fn):
                await fn()
        finally:
            st.finish_stream(closed_early=not st.done)
            self._self_fin.detach()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _is_stream(resp: Any) -> bool:
    return (hasattr(resp, "__next__") or hasattr(resp, "__anext__")) and not hasattr(resp, "choices")


def _wrap_result(call: LLMCall, resp: Any, kwargs: Mapping[str, Any], args: tuple[Any, ...], is_async: bool) -> Any:
    if kwargs.get("stream") and _is_stream(resp):
        messages = kwargs.get("messages", args[1] if len(args) > 1 else None)
        state = _StreamState(call, str(kwargs.get("model") or (args[0] if args else "")), messages)
        if not _get(kwargs.get("stream_options"), "include_usage"):
            _warm_tokenizer_once()  # this stream may end without usage: its estimate needs the tokenizer
        if is_async and hasattr(resp, "__anext__"):
            return _AsyncStream(resp, state)
        return _SyncStream(resp, state)
    _absorb_response(call, resp)
    call.end()
    return resp


# ----------------------------------------------------------------------------------------- wrappers

def _sync_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not _enabled or current_llm_call() is not None:
        return wrapped(*args, **kwargs)
    try:
        call = _start(kwargs, args, router=instance)
    except Exception as exc:
        _selftel.record_error("litellm", exc)
        return wrapped(*args, **kwargs)
    tok = call._activate()
    try:
        resp = wrapped(*args, **kwargs)
    except BaseException as exc:
        call._deactivate(tok)
        call.end(exc)
        raise
    call._deactivate(tok)
    try:
        return _wrap_result(call, resp, kwargs, args, is_async=False)
    except Exception as exc:
        _selftel.record_error("litellm", exc)
        call.end()
        return resp


async def _async_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not _enabled or current_llm_call() is not None:
        return await wrapped(*args, **kwargs)
    try:
        call = _start(kwargs, args, router=instance)
    except Exception as exc:
        _selftel.record_error("litellm", exc)
        return await wrapped(*args, **kwargs)
    tok = call._activate()
    try:
        resp = await wrapped(*args, **kwargs)
    except BaseException as exc:
        call._deactivate(tok)
        call.end(exc)
        raise
    call._deactivate(tok)
    try:
        return _wrap_result(call, resp, kwargs, args, is_async=True)
    except Exception as exc:
        _selftel.record_error("litellm", exc)
        call.end()
        return resp


def _async_entry(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # wrapt calls this synchronously; return the coroutine so ``acompletion(...)`` stays awaitable.
    return _async_wrapper(wrapped, instance, args, kwargs)


# ------------------------------------------------------------------------------------------ install

def _patch(litellm: Any) -> None:
    global _installed
    with _lock:
        if _installed:
            return
        orig_c, orig_a = litellm.completion, litellm.acompletion
        wrapt.wrap_function_wrapper(litellm, "completion", _sync_wrapper)
        wrapt.wrap_function_wrapper(litellm, "acompletion", _async_entry)
        try:
            from litellm.router import Router

            for name, fn in (("completion", _sync_wrapper), ("acompletion", _async_entry)):
                _router_had_own[name] = Router.__dict__.get(name)
                wrapt.wrap_function_wrapper(Router, name, fn)
        except Exception as exc:
            _selftel.record_error("litellm", exc)
        # Modules that copied the functions with "from litellm import acompletion" before we patched.
        new = {id(orig_c): litellm.completion, id(orig_a): litellm.acompletion}
        for mod in list(sys.modules.values()):
            if mod is None or mod is litellm or getattr(mod, "__name__", "").startswith(("litellm", "agentpress_otel")):
                continue
            for attr in ("completion", "acompletion"):
                try:
                    cur = mod.__dict__.get(attr)
                except Exception:  # noqa: S112 - exotic module objects
                    continue
                if cur is not None and id(cur) in new and (cur is orig_c or cur is orig_a):
                    _patched_modules.append((mod, attr, cur))
                    setattr(mod, attr, new[id(cur)])
        register_error_mapper(_litellm_error_type)
        register_model_normalizer(_bare_model)
        _installed = True


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
    try:
        import litellm

        litellm.token_counter(model="gpt-4o", text="warm up")
    except Exception as exc:
        _selftel.record_error("litellm.token_counter", exc)


NAME = "litellm"
REQUIRES: str | None = "litellm"
_G_LITELLM = _selftel.guard("litellm")


def instrument(telemetry: object = None) -> None:
    """Patch LiteLLM (now, or when it is first imported). Idempotent. Spans go to the global providers, so
    ``telemetry`` is optional (the :class:`~agentpress_otel.integrations.Integration` signature).

    Example::

        from agentpress_otel.integrations import litellm as ap_litellm
        ap_litellm.instrument(tel)
    """
    global _enabled, _hook_registered
    if "litellm" not in sys.modules and importlib.util.find_spec("litellm") is None:
        raise ImportError("litellm is not installed")  # instrument() skips the integration quietly
    _enabled = True
    if "litellm" not in sys.modules:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if _installed:
        return
    if "litellm" in sys.modules:
        _patch(sys.modules["litellm"])
    elif not _hook_registered:
        _hook_registered = True
        wrapt.register_post_import_hook(_on_import, "litellm")


def _on_import(module: Any) -> None:
    if _enabled:
        with _G_LITELLM:
            _patch(module)


def uninstrument() -> None:
    """Remove the patches (idempotent); spans already open still end normally.

    Example::

        ap_litellm.uninstrument()
    """
    global _installed, _enabled
    _enabled = False
    with _lock:
        if not _installed:
            return
        litellm = sys.modules.get("litellm")
        if litellm is not None:
            for name in ("completion", "acompletion"):
                cur = getattr(litellm, name, None)
                if isinstance(cur, wrapt.FunctionWrapper):
                    setattr(litellm, name, cur.__wrapped__)
            with _G_LITELLM:
                from litellm.router import Router

                for name, own in _router_had_own.items():
                    if own is None:
                        # Newer LiteLLM's Router is a facade: our patch landed on its core class, and only
                        # ``delattr(Router, name)`` (its metaclass) puts the core's original back.
                        cur = Router.__dict__.get(name, getattr(Router, name, None))
                        if getattr(cur, "_self_wrapper", None) in (_sync_wrapper, _async_entry):
                            delattr(Router, name)
                    else:
                        setattr(Router, name, own)
        for mod, attr, orig in _patched_modules:
            with _G_LITELLM:
                setattr(mod, attr, orig)
        _patched_modules.clear()
        _router_had_own.clear()
        _installed = False


def is_instrumented() -> bool:
    return _installed and _enabled

