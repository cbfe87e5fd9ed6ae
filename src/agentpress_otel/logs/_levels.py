"""Per-logger levels and DEBUG/INFO sampling, shared by the stdlib handler and the structlog processor."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping

from opentelemetry.trace import SpanContext

from agentpress_otel._option_types import parse_level as parse_level  # one copy (the config checks levels with it)

_RATIO_SCALE = 1 << 64
_SKIP_PREFIXES = ("opentelemetry", "agentpress_otel")
#: Third-party loggers whose INFO lines say again, once per call, what a span already carries: LiteLLM's
#: "LiteLLM completion() model= ...; provider = ..." on every LLM call, httpx's "HTTP Request: POST ... 200 OK" on
#: every request. Exported from WARNING unless ``logger_levels`` names them; what they print is not changed.
QUIET_BY_DEFAULT: dict[str, str] = {"LiteLLM": "WARNING", "LiteLLM Router": "WARNING", "LiteLLM Proxy": "WARNING",
                                    "httpx": "WARNING"}


class LevelPolicy:
    """Decides whether a record enters the pipeline: per-logger thresholds (longest dotted prefix
    wins) and a keep-ratio for records below WARNING (by trace id when there is one, so a sampled
    trace keeps all its logs; WARNING and above are never sampled)."""

    __slots__ = ("_cache", "default", "levels", "ratio")

    def __init__(
        self, *, default: str | int = "INFO", levels: Mapping[str, str | int] | None = None, sample_ratio: float = 1.0
    ) -> None:
        if not 0.0 <= sample_ratio <= 1.0:
            raise ValueError("sample_ratio must be within [0, 1]")
        self.default = parse_level(default)
        # The quiet defaults only ever raise a threshold: with log_level=ERROR they export from ERROR too.
        quiet = {k: max(parse_level(v), self.default) for k, v in QUIET_BY_DEFAULT.items()}
        self.levels = {**quiet, **{k: parse_level(v) for k, v in (levels or {}).items()}}
        self.ratio = sample_ratio
        self._cache: dict[str, int] = {}

    def threshold(self, name: str) -> int:
        t = self._cache.get(name)
        if t is None:
            t = self.default
            best = -1
            for prefix, lvl in self.levels.items():
                if (name == prefix or name.startswith(prefix + ".") or prefix in ("", "root")) and len(prefix) > best:
                    best, t = len(prefix), lvl
            if len(self._cache) < 10_000:
                self._cache[name] = t
        return t

    def lowest(self) -> int:
        return min([self.default, *self.levels.values()])

    def keep(self, name: str, levelno: int, sc: SpanContext | None) -> bool:
        if levelno < self.threshold(name):
            return False
        if levelno >= logging.WARNING or self.ratio >= 1.0:
            return True
        if sc is not None and sc.is_valid:
            return (sc.trace_id & (_RATIO_SCALE - 1)) < self.ratio * _RATIO_SCALE
        return random.random() < self.ratio


def internal(name: str) -> bool:
    """Records from the SDK/exporters and from us never enter the pipeline (no feedback loops)."""
    return name.startswith(_SKIP_PREFIXES)
