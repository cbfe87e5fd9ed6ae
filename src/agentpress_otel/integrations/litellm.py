"""LiteLLM: one ``chat {model}`` span (retries included) per ``completion``/``acompletion`` call.

Patched with wrapt: ``litellm.completion``, ``litellm.acompletion``, ``Router.completion`` and
``Router.acompletion``, plus any already-imported module that did ``from litellm import acompletion``
(AgentPress's ``services.llm``). Limits: references stored elsewhere before ``instrument()`` (dicts,
closures, default arguments, ``functools.partial``) keep calling the original; modules imported after
``instrument()`` get the patched function anyway.

* Nested calls (Router -> litellm.acompletion, fallbacks) are skipped while our span is active, and the
  util-genai inference context key is set, so OpenAI/Anthropic SDK instrumentations built on util-genai
  do not add a second LLM span.
* Streams (sync, async and Router alike) are returned inside one transparent ``wrapt.ObjectProxy``
  (:class:`_Stream`) that records time to first chunk, per-chunk gaps, finish reasons, usage and (when
  capturing) the text and tool calls; without a usage chunk, tokens are estimated (:func:`_estimate_tokens`)
  and ``agentpress.usage.estimated=true`` is set. The span ends exactly once: on exhaustion, error,
  ``close()``/``aclose()``, cancellation, ``break`` (then garbage collection), or when the stream is freed.
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
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import wrapt

from agentpress_otel import _selftel
from agentpress_otel._text import field as _get
from agentpress_otel.genai import (
    LLMCall,
    current_llm_call,
    register_error_mapper,
    register_model_normalizer,
)
from agentpress_otel.integrations._litellm_stream import (
    ESTIMATE_SAMPLE_CHARS,
    _Stream,
    _StreamState,
    _warm_tokenizer_once,
    flat,
)

__all__ = ["ESTIMATE_SAMPLE_CHARS", "NAME", "REQUIRES", "instrument", "provider_for", "uninstrument"]

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

_G = _selftel.guard("litellm")
_lock = threading.Lock()
_installed = False
_hook_registered = False
_enabled = False
_patched_modules: list[tuple[Any, str, Any]] = []  # (module, attr, original)
_router_had_own: dict[str, Any] = {}
_provider_cache: dict[str, tuple[str, str]] = {}



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
    except Exception:  # noqa: BLE001 - LiteLLM raises its own errors for unknown models: split the prefix
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
    model_list = getattr(router, "model_list", None)
    for dep in model_list if isinstance(model_list, list) else ():
        if _get(dep, "model_name") == model:
            m = _get(_get(dep, "litellm_params"), "model")
            if isinstance(m, str) and m != "*":
                return m
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
    return call.start()


_REQ_KEYS = frozenset({"temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "frequency_penalty",
                       "presence_penalty", "seed", "reasoning_effort", "stream", "stop", "n", "response_format",
                       "tools"})


def _wrap_result(call: LLMCall, resp: Any, kwargs: Mapping[str, Any], args: tuple[Any, ...], is_async: bool) -> Any:
    if kwargs.get("stream") and (hasattr(resp, "__next__") or hasattr(resp, "__anext__")) \
            and not hasattr(resp, "choices"):
        messages = kwargs.get("messages", args[1] if len(args) > 1 else None)
        state = _StreamState(call, str(kwargs.get("model") or (args[0] if args else "")), messages)
        if not _get(kwargs.get("stream_options"), "include_usage"):
            _warm_tokenizer_once()  # this stream may end without usage: its estimate needs the tokenizer
        return _Stream(resp, state, is_async=is_async and hasattr(resp, "__anext__"))
    call.record_response(flat(resp))
    call.end()
    return resp


# ----------------------------------------------------------------------------------------- wrappers

def _open(instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> LLMCall | None:
    """The started span for this call, or None when it is not ours to trace (disabled, nested, or a bug)."""
    if not _enabled or current_llm_call() is not None:
        return None
    with _G:
        return _start(kwargs, args, router=instance)
    return None


def _close(call: LLMCall, resp: Any, kwargs: Mapping[str, Any], args: tuple[Any, ...], is_async: bool) -> Any:
    """The caller's result: a stream comes back inside :class:`_Stream`, anything else as is (span ended)."""
    with _G:
        return _wrap_result(call, resp, kwargs, args, is_async)
    call.end()
    return resp


def _sync_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _open(instance, args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    resp = call._call(wrapped, args, kwargs)
    return _close(call, resp, kwargs, args, is_async=False)


async def _async_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _open(instance, args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    resp = await call._acall(wrapped, args, kwargs)
    return _close(call, resp, kwargs, args, is_async=True)


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
        with _G:
            from litellm.router import Router

            for name, fn in (("completion", _sync_wrapper), ("acompletion", _async_entry)):
                _router_had_own[name] = Router.__dict__.get(name)
                wrapt.wrap_function_wrapper(Router, name, fn)
        _patch_copies(litellm, {orig_c: litellm.completion, orig_a: litellm.acompletion})
        register_error_mapper(_litellm_error_type)
        register_model_normalizer(_bare_model)
        _installed = True


def _patch_copies(litellm: Any, new: dict[Any, Any]) -> None:
    """Modules that copied the functions with ``from litellm import acompletion`` before we patched."""
    for mod in list(sys.modules.values()):
        if mod is None or mod is litellm or getattr(mod, "__name__", "").startswith(("litellm", "agentpress_otel")):
            continue
        d = getattr(mod, "__dict__", None)  # exotic module objects may have none
        if not isinstance(d, dict):
            continue
        for attr in ("completion", "acompletion"):
            cur = d.get(attr)
            if cur is not None and any(cur is orig for orig in new):
                _patched_modules.append((mod, attr, cur))
                setattr(mod, attr, new[cur])


NAME = "litellm"
REQUIRES: str | None = "litellm"


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
        with _G:
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
            with _G:
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
            with _G:
                setattr(mod, attr, orig)
        _patched_modules.clear()
        _router_had_own.clear()
        _installed = False


def is_instrumented() -> bool:
    return _installed and _enabled

