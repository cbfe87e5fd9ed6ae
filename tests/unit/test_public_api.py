"""The public surface of ``agentpress_otel``: exactly the names listed here, each documented with an example.

Pinning ``__all__`` (as httpx and logfire do) makes every addition or removal a visible, reviewed change.
"""

from __future__ import annotations

import inspect

import agentpress_otel

# In ruff's RUF022 order (constants, classes, functions).
# Adding a public name means adding it here too (and to docs/ and CHANGELOG.md).
PUBLIC = [
    "PRICES_VERSION",
    "PROPAGATION_HEADERS",
    "AgentRun",
    "Config",
    "ConfigError",
    "ContextSpanProcessor",
    "LLMCall",
    "Price",
    "RedactingLogExporter",
    "RedactingSpanExporter",
    "Redactor",
    "SlackAlertHandler",
    "Telemetry",
    "ToolCall",
    "__version__",
    "agent_run",
    "configure_redaction",
    "configure_structlog",
    "cost_usd",
    "current",
    "current_ids",
    "extract",
    "inject",
    "instrument",
    "llm_call",
    "record_score",
    "redact",
    "redact_url",
    "redact_value",
    "set_prices",
    "structlog_processors",
    "thread_context",
    "tool_call",
    "watch_loop",
]

# Plain values have no docstring of their own; the module docstring or docs/ describe them.
CONSTANTS = {"PRICES_VERSION", "PROPAGATION_HEADERS", "__version__"}


def test_all_is_pinned() -> None:
    """``__all__`` lists exactly the pinned public names, once each, in the pinned order."""
    assert agentpress_otel.__all__ == PUBLIC
    assert len(set(agentpress_otel.__all__)) == len(agentpress_otel.__all__)


def test_every_public_name_is_importable() -> None:
    """Each name in ``__all__`` is bound on the package, and ``from agentpress_otel import *`` gives exactly them."""
    for name in agentpress_otel.__all__:
        assert hasattr(agentpress_otel, name), name
    ns: dict[str, object] = {}
    exec("from agentpress_otel import *", ns)  # noqa: S102 - a star import is what users write
    assert sorted(k for k in ns if k != "__builtins__") == sorted(PUBLIC)


def test_every_public_callable_has_a_docstring_with_an_example() -> None:
    """Every public class and function carries its own docstring, and that docstring shows an example."""
    missing: list[str] = []
    for name in agentpress_otel.__all__:
        if name in CONSTANTS:
            continue
        obj = getattr(agentpress_otel, name)
        assert inspect.isclass(obj) or callable(obj), f"{name} is neither a class nor callable: add it to CONSTANTS"
        doc = inspect.getdoc(obj) or ""
        # getdoc() inherits a base class's docstring; the name must document itself.
        own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
        if not own or not doc.strip():
            missing.append(f"{name}: no docstring")
        elif "Example" not in doc and ">>>" not in doc:
            missing.append(f"{name}: docstring has no example")
    assert not missing, missing


def test_constants_have_the_documented_types() -> None:
    """The public constants are plain values: a version string, a header tuple/collection, a prices version."""
    assert isinstance(agentpress_otel.__version__, str) and agentpress_otel.__version__
    assert isinstance(agentpress_otel.PRICES_VERSION, str) and agentpress_otel.PRICES_VERSION
    assert all(isinstance(h, str) and h == h.lower() for h in agentpress_otel.PROPAGATION_HEADERS)
