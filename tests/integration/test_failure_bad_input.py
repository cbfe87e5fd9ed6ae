"""Bad input never breaks the host app, and what is exported stays within the configured limits.

Property-based (hypothesis): arbitrary objects -- non-serialisable, raising ``__str__``/``__repr__``,
self-recursive, deeply nested, huge ints, NaN, invalid UTF-8 bytes, lone surrogates, megabyte strings --
go into span attributes through the genai setters and ``thread_context``, into log extras and
arguments, and into LLM messages. Nothing may raise into user code, and every exported string is cut
to ``Config.attribute_max_chars`` (content attributes to ``Config.content_max_chars``).
A final example-based test pushes a megabyte prompt through real LiteLLM.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported anywhere

import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentpress_otel._context import thread_context
from agentpress_otel.genai import agent_run, llm_call, tool_call
from agentpress_otel.testing import Capture, capture

pytestmark = pytest.mark.integration

ATTR_MAX = 256
CONTENT_MAX = 128
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.tool.definitions")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


# --- nasty values ----------------------------------------------------------------------------------
class Boom:
    """Every conversion raises (except ``repr``, which hypothesis needs to report a failing example)."""

    def __str__(self) -> str:
        raise RuntimeError("str boom")

    def __repr__(self) -> str:
        return "Boom()"

    def __format__(self, spec: str) -> str:
        raise RuntimeError("format boom")


class BadModel:
    """Looks like a pydantic model whose dump fails."""

    def model_dump(self) -> Any:
        raise ValueError("dump boom")

    def __str__(self) -> str:
        raise ValueError("str boom")


class Slotted:
    __slots__ = ("x",)

    def __init__(self) -> None:
        self.x = object()


def _recursive_list() -> list[Any]:
    a: list[Any] = [1, "x"]
    a.append(a)
    return a


def _recursive_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"role": "user", "content": "hi"}
    d["self"] = d
    return d


def _deep(n: int = 5000) -> Any:
    v: Any = "bottom"
    for _ in range(n):
        v = {"content": [v]}
    return v


SPECIALS: list[Any] = [
    Boom(), BadModel(), Slotted(), object(), _recursive_list(), _recursive_dict(), _deep(), _deep(200),
    10**400, -(2**70), math.nan, math.inf, b"\xff\xfe\xfa invalid utf8", bytearray(b"\x80" * 10),
    "\ud800 lone surrogate \udfff", "x" * 1_000_000, ["\udc80"] * 3, {1: 2, (3, 4): "tuple key", None: Boom()},
    [{"role": "user", "content": "\ud83d" * 1000}], {"role": "user", "content": [{"type": "text", "text": Boom()}]},
    set([1, 2]), frozenset(["a"]), type, print, (x for x in range(3)), memoryview(b"abc"), complex(1, 2),
]

def _special(i: int) -> Any:
    return SPECIALS[i]


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300), st.binary(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=20),
    st.integers(0, len(SPECIALS) - 1).map(_special),  # by index: hypothesis reprs sampled_from elements
)
nasty = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=20), st.integers()), children, max_size=5),
        st.tuples(children, children),
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def cap() -> Iterator[Capture]:
    with capture(service_name="bad-input", capture_content=True, attribute_max_chars=ATTR_MAX,
                 content_max_chars=CONTENT_MAX, integrations=["logging"], metrics=True) as c:
        yield c


def _check_limits(cap: Capture) -> None:
    try:
        spans = cap.spans()
    finally:
        cap.clear()  # the next example (or test) starts empty even when this one fails
    for span in spans:
        assert span.end_time is not None, span.name
        for key, value in (span.attributes or {}).items():
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, str):
                    assert len(v) <= ATTR_MAX, (span.name, key, len(v))
                    if key in CONTENT_KEYS:
                        assert len(v) <= CONTENT_MAX, (span.name, key, len(v), v[-40:])


@SETTINGS
@given(obj=nasty)
def test_genai_setters_never_raise_and_truncate(cap: Capture, obj: Any) -> None:
    """The GenAI API given hostile values never raises into the caller and truncates oversized values."""
    cap.clear()
    try:
        with agent_run("bad", thread_id="t-1"):
            with tool_call("tool", call_id="c1", arguments=obj, capture_content=True) as t:
                t.set_result(obj)
            with tool_call("tool2", capture_content=True) as t2:
                t2.set_result({"success": False, "output": obj})
            with llm_call(model="gpt-5-mini", provider="openai", messages=obj, tools=obj, temperature=obj,
                          stop=obj, capture_content=True) as call:
                call.set_input_messages(obj)
                call.set_output_messages(obj, finish_reasons=["stop"])
                call.set_system_instructions(obj)
                call.set_attribute("app.custom", obj)
                call.set_response(model="gpt-5-mini", id="r1", finish_reasons=["stop"])
    except Exception as exc:  # pragma: no cover - the assertion is the point
        pytest.fail(f"telemetry raised into user code: {exc!r}")
    _check_limits(cap)


@SETTINGS
@given(obj=nasty)
def test_thread_context_never_raises(cap: Capture, obj: Any) -> None:
    """thread_context() given hostile ids never raises into the caller."""
    cap.clear()
    try:
        with (
            thread_context(project_id=obj, thread_id=obj, agent_run_id=obj, user_id=obj, request_id=obj),
            agent_run("ctx", thread_id=obj, agent_run_id=obj, user_id=obj),
            llm_call(model="m", provider="openai"),
        ):
            pass
    except Exception as exc:
        pytest.fail(f"telemetry raised into user code: {exc!r}")
    _check_limits(cap)


@SETTINGS
@given(obj=nasty)
def test_log_extras_and_args_never_raise(cap: Capture, obj: Any) -> None:
    """Log calls with hostile extras and arguments never raise, and attribute values stay within the size limit."""
    cap.clear()
    log = logging.getLogger("bad-input")
    log.setLevel(logging.INFO)
    old_raise = logging.raiseExceptions
    logging.raiseExceptions = True  # make a handler error visible instead of printed and swallowed by stdlib
    try:
        log.info("payload", extra={"payload": obj, "nested": {"v": obj}, "agentpress.thread.id": obj})
        log.warning("formatted %s and %r", "ok", "fine", extra={"k": obj})
        try:
            raise ValueError(obj if isinstance(obj, str) else "bad")
        except ValueError:
            log.exception("with traceback", extra={"ctx": obj})
    except Exception as exc:
        pytest.fail(f"logging raised into user code: {exc!r}")
    finally:
        logging.raiseExceptions = old_raise
    records = cap.logs()
    for rec in records:
        for key, value in (rec.log_record.attributes or {}).items():
            if isinstance(value, str):
                assert len(value) <= ATTR_MAX, (key, len(value))
    _check_limits(cap)


def test_megabyte_prompt_through_litellm(cap: Capture) -> None:
    """Real LiteLLM -> our loopback OpenAI-compatible server, capture on, megabyte prompt: truncated, no raise."""
    cap.clear()
    litellm = pytest.importorskip("litellm")
    from agentpress_otel._harness.llm_server import LLMServer
    from agentpress_otel.integrations import litellm as ap_litellm

    ap_litellm.instrument()
    prompt = ("word " * 200_000) + "\U0001f600 end"  # ~1 MB (lone surrogates break the OpenAI client itself)
    try:
        with LLMServer() as srv:
            resp = litellm.completion(model="openai/gpt-5-mini", api_base=srv.base_url, api_key="x",
                                      messages=[{"role": "user", "content": prompt},
                                                {"role": "user", "content": [{"type": "text", "text": _deep(50)}]}])
        assert resp.choices[0].message.content
    finally:
        ap_litellm.uninstrument()
    chats = [s for s in cap.spans() if s.name.startswith("chat ")]
    assert chats, [s.name for s in cap.spans()]
    _check_limits(cap)
