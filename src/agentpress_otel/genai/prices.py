"""Offline, versioned LLM price table (USD per million tokens) and the cost calculation.

Prices are list prices as of :data:`PRICES_VERSION` for the models AgentPress routes to. They never come
from the network; override or extend them with :func:`set_prices` or a JSON file named by
``AGENTPRESS_OTEL_PRICES_FILE`` (same shape as :data:`DEFAULT_PRICES`).

Matching is exact after normalisation (see :func:`_candidates`): routing prefix, date, ``-latest``,
``-preview[-...]`` and version suffixes are dropped, nothing else. A variant that is not listed
(``gpt-4.1-nano``, ``o3-pro``, ``grok-4-fast``...) is unpriced rather than priced as its family, since
variants differ in price by up to 10x. OpenRouter's ``:free`` variants cost 0.

Example::

    set_prices({"my-finetune": {"input": 1.0, "output": 4.0}})
    cost_usd("openai/gpt-5-mini", input_tokens=1000, output_tokens=200)  # 0.00065
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from agentpress_otel._options import env_value

__all__ = ["DEFAULT_PRICES", "PRICES_VERSION", "Price", "cost_usd", "load_prices_file", "lookup", "set_prices"]

#: Bump when any number below changes; exported as the ``agentpress.llm.prices_version`` span attribute.
PRICES_VERSION = "2025-09-01"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. ``cache_read``/``cache_write`` default to the input price when unknown.

    Example::

        set_prices({"my-finetune": Price(input=3.0, output=12.0, cache_read=0.3)})
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


# Keys are provider-less model names (lower case); see _normalise for how call-site names map onto them.
DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-5-chat": Price(1.25, 10.00, 0.125),  # gpt-5-chat-latest
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-2024-05-13": Price(5.00, 15.00),  # the first gpt-4o snapshot kept its launch price
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "o1": Price(15.00, 60.00, 7.50),
    "o3": Price(2.00, 8.00, 0.50),
    "o3-pro": Price(20.00, 80.00),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o4-mini": Price(1.10, 4.40, 0.275),
    # Anthropic (cache_write = 5-minute cache write price)
    "claude-opus-4": Price(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4-1": Price(15.00, 75.00, 1.50, 18.75),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30, 3.75),
    "claude-3-7-sonnet": Price(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-sonnet": Price(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08, 1.00),
    # Google Gemini (prompts <= 200k tokens)
    "gemini-2.5-pro": Price(1.25, 10.00, 0.31),
    "gemini-2.5-flash": Price(0.30, 2.50, 0.075),
    "gemini-2.5-flash-lite": Price(0.10, 0.40, 0.025),
    "gemini-2.0-flash": Price(0.10, 0.40, 0.025),
    # xAI
    "grok-4": Price(3.00, 15.00, 0.75),
    "grok-3": Price(3.00, 15.00, 0.75),
    "grok-3-mini": Price(0.30, 0.50, 0.075),
    # OpenRouter-routed open models (OpenRouter list prices)
    "moonshotai/kimi-k2": Price(0.60, 2.50, 0.15),
    "deepseek/deepseek-chat": Price(0.27, 1.10, 0.07),
    "deepseek-chat": Price(0.27, 1.10, 0.07),
    "qwen/qwen3-235b-a22b": Price(0.13, 0.60),
}

# Routing prefixes LiteLLM puts in front of a model name; "openrouter/" keeps the vendor part.
_PREFIXES = (
    "openai/", "anthropic/", "gemini/", "vertex_ai/", "xai/", "x_ai/", "bedrock/", "azure/", "groq/",
    "openrouter/", "deepseek/", "together_ai/", "fireworks_ai/", "openai-compatible/",
)
# One suffix per pass, applied until nothing changes: "-preview-05-20", "-latest", dates ("-20250514",
# "-2025-08-07", "@20250514", month-day "-0709"), and versions ("-v1:0" on Bedrock, "-001"/"@001").
_SUFFIX = re.compile(
    r"(-preview(-[a-z0-9]+)*|-latest|[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])"
    r"|-v\d+(:\d+)?|[-@]\d{3})$"
)
# Bedrock ids: "[us.|eu.|apac.|global.]anthropic.claude-..."
_BEDROCK_VENDOR = re.compile(r"^((us|eu|apac|global)\.)?(anthropic|amazon|meta|mistral|cohere|ai21)\.")
#: Price of OpenRouter's ":free" variants.
FREE = Price(0.0, 0.0, 0.0, 0.0)

_lock = threading.Lock()
_prices: dict[str, Price] = dict(DEFAULT_PRICES)
_cache: dict[str, Price | None] = {}
_CACHE_MAX = 1024


def set_prices(prices: Mapping[str, Price | Mapping[str, float]], *, replace: bool = False) -> None:
    """Add or override prices (USD per million tokens); ``replace=True`` drops the built-in table.

    Example::

        set_prices({"gpt-5": {"input": 1.0, "output": 8.0, "cache_read": 0.1}})
    """
    parsed: dict[str, Price] = {}
    for name, p in prices.items():
        # A bad entry is a programmer error: one clear ValueError naming it, and nothing is applied.
        if not isinstance(name, str) or not name:
            raise ValueError(f"set_prices: model names must be non-empty strings, got {name!r}")
        if isinstance(p, Price):
            parsed[name.lower()] = p
            continue
        try:
            parsed[name.lower()] = Price(
                float(p["input"]),
                float(p["output"]),
                None if p.get("cache_read") is None else float(p["cache_read"]),
                None if p.get("cache_write") is None else float(p["cache_write"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"set_prices: {name!r} needs numeric 'input' and 'output' (USD per million tokens), "
                             f"optional 'cache_read'/'cache_write'; got {p!r}") from exc
    with _lock:
        if replace:
            _prices.clear()
        _prices.update(parsed)
        _cache.clear()


def reset_prices() -> None:
    """Back to the built-in table (tests)."""
    with _lock:
        _prices.clear()
        _prices.update(DEFAULT_PRICES)
        _cache.clear()


def load_prices_file(path: str | None = None) -> int:
    """Merge a JSON price file (``{"model": {"input": .., "output": ..}}``); returns entries loaded.

    Example::

        load_prices_file("/etc/agentpress/prices.json")
    """
    path = path or env_value("prices_file")
    if not path:
        return 0
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    table = data.get("prices", data) if isinstance(data, dict) else {}
    set_prices(table)
    return len(table)


def _candidates(model: str) -> list[str]:
    """Names to look up, most specific first: as given, without routing prefix, then without suffixes."""
    m = model.strip().lower()
    out = [m]
    for pre in _PREFIXES:
        if m.startswith(pre):
            rest = m[len(pre):]
            out.append(rest)
            if "/" in rest:  # openrouter/vendor/model -> also try model alone
                out.append(rest.split("/", 1)[1])
            break
    bedrock = _BEDROCK_VENDOR.sub("", out[-1])
    if bedrock != out[-1]:
        out.append(bedrock)
    more = []
    for c in out:
        while True:
            stripped = _SUFFIX.sub("", c)
            if stripped == c or not stripped:
                break
            more.append(stripped)
            c = stripped
    return out + more


def lookup(model: str | None) -> Price | None:
    """Price for ``model`` (any LiteLLM-style spelling) or ``None`` when unknown.

    Example::

        lookup("anthropic/claude-sonnet-4-20250514")  # Price(input=3.0, output=15.0, ...)
    """
    if not isinstance(model, str) or not model:
        return None  # not a model name (None, bytes, an object): unpriced, never an exception
    hit = _cache.get(model, _MISSING)
    if hit is not _MISSING:
        return hit  # type: ignore[return-value]
    with _lock:
        found: Price | None = None
        cands = _candidates(model)
        for cand in cands:
            found = _prices.get(cand)
            if found is not None:
                break
        if found is None and cands[0].endswith(":free"):
            found = FREE  # OpenRouter's free variant of any model, listed or not
        # No family fallback (the longest-prefix match priced gpt-4.1-nano as gpt-4.1): unlisted = unpriced.
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[model] = found
    return found


_MISSING = object()


def cost_usd(
    model: str | None,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float | None:
    """USD cost of one call, or ``None`` for an unpriced model. ``input_tokens`` includes cached ones.

    Example::

        cost_usd("gpt-5", input_tokens=1_000_000, output_tokens=0)  # 1.25
    """
    price = lookup(model)
    if price is None:
        return None
    return price_cost(price, input_tokens=input_tokens, output_tokens=output_tokens,
                      cache_read_tokens=cache_read_tokens, cache_write_tokens=cache_write_tokens)


def price_cost(price: Price, *, input_tokens: int = 0, output_tokens: int = 0, cache_read_tokens: int = 0,
               cache_write_tokens: int = 0) -> float:
    """USD cost of the given token counts at ``price``."""
    cr = max(0, cache_read_tokens)
    cw = max(0, cache_write_tokens)
    fresh = max(0, input_tokens - cr - cw)
    total = (
        fresh * price.input
        + cr * (price.input if price.cache_read is None else price.cache_read)
        + cw * (price.input if price.cache_write is None else price.cache_write)
        + max(0, output_tokens) * price.output
    )
    return total / 1_000_000.0
