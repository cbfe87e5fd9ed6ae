"""Structured, correlated, redacted logs that never block the caller.

See docs/logging.md for the field names. The stdlib handler lives in
``agentpress_otel.integrations.logging``, the structlog processors in
``agentpress_otel.integrations.structlog``; both feed the one :class:`LogPipeline`.
"""

from agentpress_otel.logs._levels import LevelPolicy, parse_level
from agentpress_otel.logs._pipeline import (
    ID_FIELDS,
    WORKER_THREAD_NAME,
    LogPipeline,
    current_ids,
    flush,
    get_pipeline,
    stats,
)

__all__ = [
    "ID_FIELDS",
    "WORKER_THREAD_NAME",
    "LevelPolicy",
    "LogPipeline",
    "current_ids",
    "flush",
    "get_pipeline",
    "parse_level",
    "stats",
]
