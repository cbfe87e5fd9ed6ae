"""LiteLLM's and httpx's per-call INFO lines are not exported by default; named in logger_levels, they are.

Walks the real stdlib path: ``instrument()`` installs our handler on the root logger, records go through the log
pipeline to a real SDK LoggerProvider with an in-memory exporter (``testing.capture``).
"""

from __future__ import annotations

import logging
from typing import Any

from agentpress_otel import testing


def _exported(**kw: Any) -> list[str]:
    # The loggers print INFO (as LiteLLM's does under LITELLM_LOG=INFO, and as an app's INFO logging does):
    # what reaches handlers is the same in every case, only our export decides.
    loggers = [logging.getLogger(n) for n in ("LiteLLM", "httpx", "myapp")]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
    try:
        return _emit(**kw)
    finally:
        for lg, lvl in zip(loggers, saved, strict=True):
            lg.setLevel(lvl)


def _emit(**kw: Any) -> list[str]:
    with testing.capture(**kw) as cap:
        logging.getLogger("LiteLLM").info("LiteLLM completion() model= gpt-5-mini; provider = openai")
        logging.getLogger("LiteLLM").warning("LiteLLM retrying after 429")
        logging.getLogger("httpx").info('HTTP Request: POST http://llm/v1/chat/completions "HTTP/1.1 200 OK"')
        logging.getLogger("myapp").info("thread started")
        cap.flush()
        return [str(r.log_record.body) for r in cap.logs()]


def test_chatter_is_not_exported_by_default() -> None:
    """By default the LiteLLM INFO line and the httpx request line stay out; WARNING and the app's INFO go."""
    got = _exported()
    assert "LiteLLM retrying after 429" in got and "thread started" in got
    assert not any("completion()" in b or "HTTP Request" in b for b in got), got


def test_naming_a_quiet_logger_exports_it() -> None:
    """logger_levels={"LiteLLM": "INFO"} brings LiteLLM's INFO line back; httpx stays quiet."""
    got = _exported(logger_levels={"LiteLLM": "INFO"})
    assert any("completion()" in b for b in got)
    assert not any("HTTP Request" in b for b in got)


def test_the_quiet_defaults_never_change_a_logger_level() -> None:
    """An app that set LiteLLM's logger to ERROR keeps it there: quiet defaults only filter our export."""
    lg = logging.getLogger("LiteLLM")
    old = lg.level
    lg.setLevel(logging.ERROR)
    try:
        with testing.capture():
            assert lg.level == logging.ERROR
    finally:
        lg.setLevel(old)


def test_quiet_defaults_never_lower_a_stricter_level() -> None:
    """With log_level=ERROR, LiteLLM's and httpx's WARNING lines stay out like everyone's: the quiet defaults
    only raise a threshold."""
    got = _exported(log_level="ERROR")
    assert "LiteLLM retrying after 429" not in got and got == [], got
