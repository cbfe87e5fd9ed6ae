"""httpx: CLIENT spans and ``http.client.request.duration``, with W3C traceparent/tracestate/baggage injected.

The per-request work is :mod:`._httpx_client` (the stable HTTP conventions, at a quarter of the stock
instrumentation's CPU); under a transition mode the stock instrumentation does it instead.

Our id baggage entries (``agentpress.*`` and ``user.id``) stay inside your network: they are sent only
to loopback and private-network addresses, single-label and ``localhost``/``.internal``/``.local``/
``.svc``/``.cluster.local`` names, and hosts matching ``Config.internal_hosts`` (suffix match). Requests to
anyone else (an LLM provider, a payment API) carry ``traceparent``/``tracestate`` and the app's other
baggage entries, but not our ids. The filter runs once the propagation headers are injected (inside our
wrapper, or as a thin wrapper *under* the stock one).
"""

from __future__ import annotations

import ipaddress
import sys
from typing import TYPE_CHECKING, Any

from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled as _http_enabled

from agentpress_otel import _selftel
from agentpress_otel._context import ID_ATTRIBUTES
from agentpress_otel.integrations import _httpx_client as _client
from agentpress_otel.integrations._registry import Skip

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

NAME = "httpx"
REQUIRES: str | None = "httpx"

_instrumentor: Any = None
_filters: list[tuple[Any, str, Any]] = []  # (class, method name, the original) we wrapped

#: Name suffixes that never leave a private network.
_INTERNAL_SUFFIXES = ("localhost", ".localhost", ".internal", ".local", ".svc", ".cluster.local")
_OUR_KEYS = frozenset(ID_ATTRIBUTES.values())
_internal_hosts: tuple[str, ...] = ()
_cache: dict[str, bool] = {}
_active = False
_settings: _client.Settings | None = None  # our own wrapper's, when it is the one installed


def is_internal_host(host: str, extra: tuple[str, ...] = ()) -> bool:
    """Whether ``host`` is inside the app's network: loopback/private/link-local addresses, single-label
    and ``localhost``/``.internal``/``.local``/``.svc`` names, or a match of ``extra`` (suffix, dot-aligned).

    Example::

        is_internal_host("10.0.3.7")                           # True
        is_internal_host("api.openai.com")                     # False
        is_internal_host("billing.corp.example", (".corp.example",))  # True
    """
    h = host.strip("[]").rstrip(".").lower()
    if not h:
        return False
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        pass
    else:
        return ip.is_loopback or ip.is_private or ip.is_link_local
    if "." not in h or h.endswith(_INTERNAL_SUFFIXES):
        return True
    for suffix in extra:
        if h == suffix.lstrip(".") or h.endswith(suffix if suffix.startswith(".") else "." + suffix):
            return True
    return False


def _internal(host: str) -> bool:
    hit = _cache.get(host)
    if hit is None:
        hit = is_internal_host(host, _internal_hosts)
        if len(_cache) > 1024:
            _cache.clear()
        _cache[host] = hit
    return hit


def strip_id_baggage(value: str) -> str:
    """``value`` (a W3C ``baggage`` header) without our id entries.

    Example::

        strip_id_baggage("agentpress.thread.id=t-1,team=a")  # "team=a"
    """
    kept = [m for m in value.split(",") if m.split("=", 1)[0].strip() not in _OUR_KEYS and m.strip()]
    return ",".join(kept)


def _filter_request(request: Any) -> None:
    if not _active:
        return
    headers = request.headers
    value = headers.get("baggage")
    if not value or _internal(request.url.host):
        return
    kept = strip_id_baggage(value)
    if kept == value:
        return
    if kept:
        headers["baggage"] = kept
    else:
        del headers["baggage"]


def _request_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[0] if args else kwargs.get("request")


_G_BAGGAGE = _selftel.guard("httpx.baggage")  # telemetry must never break the request


def _filter(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Wraps both transports. Synchronous for the async one too: the headers are final when the transport is
    called, and its coroutine is returned as it is."""
    with _G_BAGGAGE:
        _filter_request(_request_of(args, kwargs))
    return wrapped(*args, **kwargs)


def _install(wrapper: Any) -> None:
    import httpx

    for cls, name in ((httpx.HTTPTransport, "handle_request"), (httpx.AsyncHTTPTransport, "handle_async_request")):
        _wrap(cls, name, wrapper[name])


def _wrap(cls: Any, name: str, wrapper: Any) -> None:
    import wrapt

    original = cls.__dict__[name]
    node = original
    while node is not None:  # ours anywhere in the chain (left as a pass-through under someone's later wrapper)
        if getattr(node, "_self_wrapper", None) is wrapper:
            return  # it reads the settings again: wrapping twice would make two spans per request
        node = getattr(node, "__wrapped__", None)
    wrapt.wrap_function_wrapper(cls, name, wrapper)
    _filters.append((cls, name, original))


#: LiteLLM's async calls go through its own httpx transport over aiohttp (the default since LiteLLM 1.7x), which
#: is not httpx's AsyncHTTPTransport: without this, no LLM request would have an HTTP span, a traceparent (an
#: LLM gateway such as the LiteLLM proxy could not join the trace) or a point in http.client.request.duration.
_LITELLM_TRANSPORT = "litellm.llms.custom_httpx.aiohttp_transport"
_hook_registered = False


def _wrap_litellm_transport(module: Any) -> None:
    if _settings is None:
        return  # not (or no longer) ours to do
    aiohttp_inst = sys.modules.get("opentelemetry.instrumentation.aiohttp_client")
    if aiohttp_inst is not None and aiohttp_inst.AioHttpClientInstrumentor().is_instrumented_by_opentelemetry:
        return  # the app traces aiohttp itself: its span is under LiteLLM's transport already, one is enough
    with _G_SPAN:
        cls = getattr(module, "LiteLLMAiohttpTransport", None)
        if cls is not None and "handle_async_request" in cls.__dict__:
            _wrap(cls, "handle_async_request", _async_send)


def _watch_litellm_transport() -> None:
    """Wrap LiteLLM's aiohttp transport now if it is imported, else when it is (hooks cannot be removed: one)."""
    global _hook_registered
    import wrapt

    if _LITELLM_TRANSPORT in sys.modules:
        _wrap_litellm_transport(sys.modules[_LITELLM_TRANSPORT])
    elif not _hook_registered:
        _hook_registered = True
        wrapt.register_post_import_hook(_wrap_litellm_transport, _LITELLM_TRANSPORT)


def _sync_send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    st = _settings
    if st is None or not _http_enabled():
        return wrapped(*args, **kwargs)
    started = None
    with _G_SPAN:
        started = _client.start(st, _request_of(args, kwargs))
    if started is None:
        return wrapped(*args, **kwargs)
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as exc:
        _client.finish(st, started, None, exc)
        raise
    _client.finish(st, started, response, None)
    return response


async def _async_send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    st = _settings
    if st is None or not _http_enabled():
        return await wrapped(*args, **kwargs)
    started = None
    with _G_SPAN:
        started = _client.start(st, _request_of(args, kwargs))
    if started is None:
        return await wrapped(*args, **kwargs)
    try:
        response = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _client.finish(st, started, None, exc)
        raise
    _client.finish(st, started, response, None)
    return response


_G_SPAN = _selftel.guard("httpx.span")
_SPANS = {"handle_request": _sync_send, "handle_async_request": _async_send}
_FILTERS = {"handle_request": _filter, "handle_async_request": _filter}


def _remove_filters() -> None:
    while _filters:
        cls, name, original = _filters.pop()
        cur = cls.__dict__.get(name)
        if getattr(cur, "__wrapped__", None) is original:
            setattr(cls, name, original)
        # else someone wrapped on top of ours since: keep their chain; ours is a pass-through now (_active).


def instrument(telemetry: Telemetry) -> None:
    """Client spans and the duration metric for httpx into ``telemetry``'s providers, and the id-baggage filter.
    Idempotent.

    Under the stable HTTP conventions (what ``instrument()`` opts into) our own wrapper does the work
    (:mod:`._httpx_client`); if the app chose a transition mode (``OTEL_SEMCONV_STABILITY_OPT_IN=http/dup``, or
    none) the stock instrumentation, which implements those modes, does it. Raises :class:`Skip` when the app
    instrumented httpx itself (left alone), ``ImportError`` without httpx.

    Example::

        from agentpress_otel.integrations import httpx as httpx_integration
        httpx_integration.instrument(tel)  # done by agentpress_otel.instrument() when "httpx" is enabled
    """
    global _instrumentor, _internal_hosts, _active, _settings
    import httpx  # noqa: F401  - ImportError here means "not installed": the integration is skipped
    from opentelemetry.instrumentation._semconv import (
        _OpenTelemetrySemanticConventionStability,
        _OpenTelemetryStabilitySignalType,
        _StabilityMode,
    )
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if _instrumentor is not None:
        return
    # Stable HTTP semantic conventions (server.address, http.request.method, ...): instrument() has put
    # "http" in OTEL_SEMCONV_STABILITY_OPT_IN (_providers.opt_in_stable_conventions); dashboards group outbound
    # calls by server.address.
    inst = HTTPXClientInstrumentor()
    if inst.is_instrumented_by_opentelemetry:
        raise Skip("the app instrumented httpx itself: left alone")
    _internal_hosts = tuple(telemetry.config.internal_hosts)
    _cache.clear()
    _OpenTelemetrySemanticConventionStability._initialize()  # type: ignore[no-untyped-call]
    mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
        _OpenTelemetryStabilitySignalType.HTTP)
    _active = True
    if mode is _StabilityMode.HTTP:
        _settings = _client.make_settings(telemetry.tracer_provider, telemetry.meter_provider, _filter_request,
                                          telemetry)
        _install(_SPANS)
        _watch_litellm_transport()
        # The stock instrumentor now reads as done, so an app that calls it after us gets a no-op (and the
        # stock warning), not a second span per request.
        inst._is_instrumented_by_opentelemetry = True
        _instrumentor = inst
        return
    _install(_FILTERS)  # first, so the upstream wrapper (which injects the headers) runs outside it
    try:
        inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    except BaseException:  # undo our half, then let the registry count and report it
        _active = False
        _remove_filters()
        raise
    _instrumentor = inst


def uninstrument() -> None:
    """Remove our wrapper (or the stock instrumentation) and the filter (idempotent).

    Example::

        httpx_integration.uninstrument()
    """
    global _instrumentor, _active, _settings
    _active = False
    if _instrumentor is not None:
        if _settings is not None:
            _instrumentor._is_instrumented_by_opentelemetry = False
        else:
            _instrumentor.uninstrument()
        _instrumentor = None
        _settings = None
        _remove_filters()
