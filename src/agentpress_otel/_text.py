"""Text helpers every signal shares: one truncation, one ``to_text``, one field getter.

Each concern has exactly this one implementation; the log pipeline, GenAI content capture, span attributes, the
redactor and Slack alerts all call it, so a cut value looks the same wherever a user meets it.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["field", "to_text", "truncate"]

Keep = Literal["head", "tail", "middle"]


def _marker(cut: int) -> str:
    return f"…[{cut} chars cut]…"


def truncate(text: str, limit: int, *, keep: Keep = "head", already_cut: int = 0) -> str:
    """``text`` cut to at most ``limit`` characters, with one marker saying how many went.

    ``already_cut`` counts characters the caller dropped before (e.g. to bound redaction work); they are added to
    the marker's count, and a marker is written even when ``text`` itself fits.

    ``keep="head"`` keeps the start (a message), ``"tail"`` the end, ``"middle"`` a third of the head and two
    thirds of the tail (a stack trace: the outermost frames, and the innermost ones with the exception line).
    The marker counts toward ``limit``; when ``limit`` is too small to hold it, the text is cut without one.

    Example::

        truncate("x" * 100, 30)  # 'xxxxxxxxxxxx…[82 chars cut]…'
    """
    if len(text) <= limit and not already_cut:
        return text
    if limit <= 0:
        return ""
    total = len(text) + already_cut
    marker = _marker(total - limit)
    for _ in range(3):  # the marker's own length is part of the cut; its digit count settles in two rounds
        room = limit - len(marker)
        marker = _marker(total - min(room, len(text)))
    room = limit - len(marker)
    if room <= 0:
        return text[-limit:] if keep == "tail" else text[:limit]
    room = min(room, len(text))
    if keep == "head":
        return text[:room] + marker
    if keep == "tail":
        return marker + text[len(text) - room :]
    head = room // 3
    return text[:head] + marker + text[len(text) - (room - head) :]


def _json_default(o: Any) -> Any:
    for attr in ("model_dump", "dict", "to_dict"):
        fn = getattr(o, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:  # noqa: S112, BLE001 - a model's own dump may raise: try the next representation
                continue
    return to_text(o)


def to_text(obj: Any, *, max_bytes: int = 1 << 20, structured: bool = False) -> str:
    """The text form of any value, never raising.

    Strings are returned as they are; bytes are decoded (UTF-8, invalid bytes replaced, at most ``max_bytes``);
    dates in ISO 8601; exceptions as ``Type: message``. With ``structured=True`` containers and models
    (pydantic's ``model_dump``, ``dict()``, ``to_dict()``) are JSON-encoded, compact and non-ASCII kept, as GenAI
    content is recorded. Anything else is ``str()``, then ``repr()``, then a placeholder.

    Example::

        to_text(b"caf\\xc3\\xa9")                      # 'café'
        to_text({"role": "user"}, structured=True)   # '{"role":"user"}'
    """
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj[:max_bytes]).decode("utf-8", "replace")
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, BaseException):  # "ValueError: msg": str() alone would drop the type
        try:
            msg = str(obj)
        except Exception:  # noqa: BLE001 - a user exception's __str__ may raise
            msg = "<unprintable message>"
        return f"{type(obj).__name__}: {msg}" if msg else type(obj).__name__
    if structured:
        try:
            return json.dumps(obj, default=_json_default, ensure_ascii=False, separators=(",", ":"))
        except Exception:  # noqa: S110, BLE001 - circular or unencodable: fall back to str() below
            pass
    for fn in (str, repr):
        try:
            text = fn(obj)
            if isinstance(text, str):
                return text
        except Exception:  # noqa: S112, BLE001 - a user __str__/__repr__ may raise; try the next form
            continue
    return f"<unprintable {type(obj).__name__}>"


_MISSING: Any = object()
_absent: dict[tuple[type, str], bool] = {}


def _absent_on_model(cls: type, key: str) -> bool:
    """Whether ``key`` can only be a pydantic extra of an instance of ``cls`` (if it is not in its dict).

    LiteLLM's responses and stream chunks are pydantic models: ``getattr(chunk, "usage", None)`` on a chunk without
    usage goes through pydantic's ``__getattr__``, which raises and catches an AttributeError (most of 12 µs per
    chunk). For a class whose ``__getattr__`` is pydantic's, a public name that is neither in the instance dict nor
    on the class is an extra or absent."""
    hit = _absent.get((cls, key))
    if hit is None:
        pyd = sys.modules.get("pydantic")
        base = getattr(pyd, "BaseModel", None) if pyd is not None else None
        hit = (base is not None and getattr(cls, "__getattr__", None) is getattr(base, "__getattr__", 0)
               and not key.startswith("_") and not hasattr(cls, key))
        if len(_absent) > 4096:
            _absent.clear()
        _absent[(cls, key)] = hit
    return hit


def field(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, else ``getattr(obj, key, None)``; ``None`` when absent or unreadable.

    Reads provider responses of any shape (dicts, pydantic models with extras, SDK objects) without raising.

    Example::

        field({"usage": 3}, "usage")         # 3
        field(response, "usage")             # response.usage, or None
    """
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(key)
    try:
        d = getattr(obj, "__dict__", None)
        if d is not None:
            v = d.get(key, _MISSING)
            if v is not _MISSING:
                return v
            if _absent_on_model(type(obj), key):
                # pydantic's own __getattr__ would look in the extras next, then raise: that, minus the raise
                extra = getattr(obj, "__pydantic_extra__", None)
                return extra.get(key) if extra else None
        if isinstance(obj, Mapping):
            return obj.get(key)
        return getattr(obj, key, None)
    except Exception:  # noqa: BLE001 - e.g. a __getattr__ raising KeyError: not the shape we read
        return None
