"""The one truncation, ``to_text`` and field getter (``agentpress_otel._text``)."""

from __future__ import annotations

import datetime as dt

import pytest

from agentpress_otel._text import field, to_text, truncate


@pytest.mark.parametrize("keep", ["head", "tail", "middle"])
@pytest.mark.parametrize("n", [0, 1, 5, 19, 20, 21, 99, 100, 101, 10_000])
@pytest.mark.parametrize("limit", [0, 1, 10, 20, 25, 64, 100])
def test_truncate_never_exceeds_limit_and_counts_exactly(keep: str, n: int, limit: int) -> None:
    """The result fits ``limit``; when a marker is present, it states exactly how many characters were removed."""
    text = "".join(chr(97 + i % 26) for i in range(n))
    out = truncate(text, limit, keep=keep)  # type: ignore[arg-type]
    assert len(out) <= max(limit, 0)
    if n <= limit:
        assert out == text
    elif "chars cut]" in out:
        cut = int(out.split("…[")[1].split(" chars")[0])
        marker = f"…[{cut} chars cut]…"
        assert cut == n - (len(out) - len(marker))
        head, _, tail = out.partition(marker)
        assert text.startswith(head) and text.endswith(tail)
        if keep == "head":
            assert tail == ""
        if keep == "tail":
            assert head == ""
        if keep == "middle":
            assert tail and len(tail) >= len(head)


def test_to_text_shapes() -> None:
    """Bytes, dates, exceptions, models and unprintable objects all give text, never an exception."""

    class Bad:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    class Model:
        def model_dump(self) -> dict[str, int]:
            return {"a": 1}

    assert to_text(b"caf\xc3\xa9\xff") == "café\ufffd"
    assert to_text(dt.date(2026, 1, 2)) == "2026-01-02"
    assert to_text(ValueError("x")) == "ValueError: x"
    assert to_text(Bad()) == "<unprintable Bad>"
    assert to_text({"m": Model(), "é": [1]}, structured=True) == '{"m":{"a":1},"é":[1]}'
    assert to_text({"a": 1}) == "{'a': 1}"
    loop: list[object] = []
    loop.append(loop)
    assert to_text(loop, structured=True) == "[[...]]"


def test_field_reads_mappings_objects_and_survives_raising_getattr() -> None:
    """Dict keys and attributes read the same way; a raising ``__getattr__`` reads as absent."""

    class Raising:
        def __getattr__(self, name: str) -> object:
            raise KeyError(name)

    class Obj:
        def __init__(self) -> None:
            self.usage = 3

    assert field({"usage": 3}, "usage") == 3
    assert field(Obj(), "usage") == 3
    assert field(Obj(), "other") is None
    assert field(Raising(), "x") is None
    assert field(None, "x") is None
