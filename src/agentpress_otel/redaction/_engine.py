"""The redaction engine: one alternation over all detectors, validated matches, keyed-hash tags.

Compiling the detectors and finding the next match is :mod:`._program`'s job (RE2, with the stdlib engine as a
fallback); this module judges each match (validators, allowlists), builds the tags and walks text, URLs and
nested structures. The short-string fast path (a clean log message, one attribute value) is :meth:`Redactor.redact`.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any, AnyStr, TypeVar
from urllib.parse import unquote

from agentpress_otel._options import env_value
from agentpress_otel._text import to_text, truncate
from agentpress_otel.redaction._detectors import (
    BUILTIN,
    DEFAULT_OFF,
    URL_QUERY_KEYS,
    Detector,
    is_sensitive_key,
    normalize_key,
)
from agentpress_otel.redaction._needles import clean_for
from agentpress_otel.redaction._program import HAVE_RE2, Engine, Program, compile_user

__all__ = ["Engine", "Redactor", "configure_redaction", "default_redactor", "redact", "redact_url", "redact_value",
           "to_text"]  # fmt: skip

T = TypeVar("T")
#: Strings up to this length take redact()'s one-call check (an RE2 set, which scans to the end of the text);
#: longer ones start with the bounds program, which stops at the first match.
_SHORT = 2048
#: Up to this many bytes, a string made only of these characters cannot hold a built-in match: every detector
#: needs some other character (":", "=", "@", "+", "(", whitespace) or at least 12 characters (the shortest is a
#: phone number, "555.123.4567"); only the ip detector ("1.2.3.4") is shorter, so it turns this off. Such
#: strings (a method, a status, a model or tool name, a short route or number) skip the RE2 call.
#: tests/unit/test_redaction_shortcut.py checks the claim against RE2 for every detector.
_TINY = 11
_TINY_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-"
_TAG_PREFIX = "[REDACTED:"
_TAG_PREFIX_B = _TAG_PREFIX.encode()
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: attribute names whose values are URLs or query strings (query parameters get key rules).
URL_ATTRIBUTES = frozenset({"url.full", "url.query", "http.url", "http.target", "url.original", "server.url"})
_MAX_DEPTH = 32
#: Attribute names whose over-long values keep head and tail (the innermost frames are at the end).
_HEAD_TAIL_ATTRIBUTES = frozenset({"exception.stacktrace", "exception", "stack", "stack_info"})
KEYS_PLAIN, KEYS_URL, KEYS_MORE = 0, 1, 2  # what Redactor.key_plan answers


def default_hash_key() -> bytes:
    """The tag key when none is given: ``AGENTPRESS_OTEL_REDACT_HASH_KEY`` (UTF-8, 16+ characters) if
    set, so tags correlate across processes and restarts; otherwise 32 random bytes per redactor."""
    # Through the options table (so doctor can name the source); a too-short key resolves to None there.
    key = env_value("redact_hash_key")
    return str.encode(key, "utf-8") if key else os.urandom(32)


class Redactor:
    """Finds secrets and personal data in text and structures and replaces them with tags.

    A replaced value becomes ``[REDACTED:<kind>:<4 hex>]``; the hex is an HMAC-SHA256 of the secret
    under a per-process random key (or ``hash_key``), so equal secrets get equal tags in one process
    without the tag revealing anything.

    Example::

        r = Redactor(ip=True, patterns={"acme_id": r"ACME-[0-9]{6}"}, allowlist=["ops@example.com"])
        r.redact("key sk-proj-abcdefghijklmnopqrstuvwx1234 for bob@example.com")
        # 'key [REDACTED:openai_key:3f9a] for [REDACTED:email:71c2]'
    """

    def __init__(
        self,
        *,
        email: bool = True,
        phone: bool = True,
        ip: bool = False,
        card: bool = True,
        disabled: Iterable[str] = (),
        patterns: Mapping[str, str] | None = None,
        allowlist: Iterable[str] = (),
        allow_patterns: Iterable[str] = (),
        sensitive_keys: Iterable[str] = (),
        hash_key: bytes | None = None,
        max_chars: int = 65_536,
        engine: Engine | None = None,
    ) -> None:
        if engine is None:
            engine = "re2" if HAVE_RE2 else "re"
        if engine == "re2" and not HAVE_RE2:
            raise ValueError("engine='re2' needs the google-re2 package")
        if max_chars < 64:
            raise ValueError("max_chars must be >= 64")
        self.engine: Engine = engine
        self.max_chars = max_chars
        self._key = hash_key if hash_key is not None else default_hash_key()
        self._tags: dict[tuple[str, str], str] = {}
        self._key_plans: dict[tuple[Any, ...], int] = {}
        self._allow = frozenset(allowlist)
        self._extra_keys = frozenset(normalize_key(k) for k in sensitive_keys)
        self._allow_res = [compile_user(self.engine, p, "allow pattern") for p in allow_patterns]
        off = set(disabled)
        for kind, on in (("email", email), ("phone", phone), ("ip", ip), ("card", card)):
            if not on:
                off.add(kind)
            elif kind in DEFAULT_OFF:
                off.discard(kind)
        if ip is False:
            off |= DEFAULT_OFF
        user: list[Detector] = []
        for kind, pat in (patterns or {}).items():
            if not _KIND_RE.match(kind):
                raise ValueError(f"pattern name {kind!r} must match [a-z][a-z0-9_]*")
            compile_user(self.engine, pat, f"pattern {kind!r}")
            user.append(Detector(kind, pat))
        self._detectors = tuple(user) + tuple(d for d in BUILTIN if d.kind not in off)
        self._prog = Program(self._detectors, engine)
        # "Any match at all?" in one RE2 call, held here for redact()'s fast path (None: no RE2 internals).
        self._any_of: Any = self._prog.any_of
        self._short = min(_SHORT, max_chars) if self._any_of is not None else -1  # -1: no one-call check
        self._tiny = _TINY if not user and "ip" not in self.kinds else -1  # user patterns: anything may match
        # The compiled pre-check (_needles, _precheck.c): "no built-in detector can match" for most clean short
        # strings, in one C call that costs a fraction of RE2's; None without the extension, with user patterns
        # or with a detector it has no needles for (ip).
        self._clean = clean_for(self.kinds) if not user and self._any_of is not None else None
        # Strings checked together (all_clean) are joined by newlines: a newline is a non-word character like
        # a string's edge, so every match in one string is a match in the join, unless a user pattern anchors
        # on the text's start or end (then each string is scanned on its own).
        self._joinable = not any(a in d.pattern for d in user for a in ("^", "$", "\\A", "\\z", "\\Z"))

    # ------------------------------------------------------------------ construction
    # ------------------------------------------------------------------ public API
    @property
    def kinds(self) -> tuple[str, ...]:
        """The detector kinds this redactor runs, in priority order."""
        return tuple(d.kind for d in self._detectors)

    def tag(self, kind: str, secret: str) -> str:
        """The replacement for ``secret``: ``[REDACTED:<kind>:<4 hex keyed hash>]``.

        Example: ``Redactor(hash_key=b"k").tag("password", "hunter2") -> '[REDACTED:password:....]'``
        """
        key = (kind, secret)
        t = self._tags.get(key)
        if t is None:
            h = hmac.digest(self._key, secret.encode("utf-8", "surrogatepass"), "sha256")[:2].hex()
            t = f"{_TAG_PREFIX}{kind}:{h}]"
            # The same secret recurs (a JWT on every request line); a small cache skips the HMAC.
            # Secrets up to 256 chars only, at most 2048 entries: bounded memory.
            if len(secret) <= 256:
                if len(self._tags) >= 2048:
                    self._tags.clear()
                self._tags[key] = t
        return t

    def key_plan(self, keys: tuple[Any, ...]) -> int:
        """What a mapping with ``keys`` needs beyond scanning its text: ``KEYS_PLAIN`` nothing, ``KEYS_URL`` a URL
        (plain if no query), ``KEYS_MORE`` more (a key not text, sensitive, a stack trace). Cached per key tuple."""
        hit = self._key_plans.get(keys)
        if hit is None:
            hit = KEYS_MORE if any(type(k) is not str or k in _HEAD_TAIL_ATTRIBUTES or self.is_sensitive_key(k)
                                   for k in keys) else KEYS_URL if URL_ATTRIBUTES.intersection(keys) else KEYS_PLAIN
            if len(self._key_plans) >= 4096:
                self._key_plans.clear()
            self._key_plans[keys] = hit
        return hit

    def is_sensitive_key(self, key: str) -> bool:
        """True when a field named ``key`` holds a secret. Example: ``r.is_sensitive_key("api_key")``."""
        return is_sensitive_key(key, self._extra_keys)

    def redact(self, text: str) -> str:
        """Return ``text`` with every detected secret replaced by a tag (the same object if clean).

        Text longer than ``max_chars`` is cut to ``max_chars`` first (cost is linear in length).

        Example: ``Redactor().redact("password=hunter2")`` -> ``'password=[REDACTED:secret:9c1e]'``
        """
        if type(text) is str and len(text) <= self._short:
            # The common case, a clean short string (a log message, an attribute value): the C pre-check decides
            # most of them; the rest take one call into RE2's DFA and no Python frames (per short string the call
            # itself is most of the cost).
            if self._clean is not None and self._clean(text):
                return text
            try:
                data = text.encode()
            except UnicodeEncodeError:  # lone surrogates: repaired below
                pass
            else:
                if (len(data) <= self._tiny and not data.translate(None, _TINY_CHARS)) or not self._any_of(data):
                    return text
                out = self._replace_all(data)
                return text if out is None else out.decode("utf-8", "surrogatepass")
        if not isinstance(text, str):
            return text
        if len(text) > self.max_chars:
            text = truncate(text, self.max_chars)
        if not text:
            return text
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: OTLP (protobuf) cannot encode them
                text = text.encode("utf-8", "replace").decode("utf-8")
        if self.engine == "re2":
            data = text.encode("utf-8", "surrogatepass")
            out = self._replace_all(data)
            return text if out is None else out.decode("utf-8", "surrogatepass")
        res = self._replace_all(text)
        return text if res is None else res

    def all_clean(self, texts: Sequence[str]) -> bool:
        """True when :meth:`redact` would return each of ``texts`` unchanged, checked in one scan (see
        :meth:`candidates`). False means "maybe not": redact them one by one.

        Example: ``r.all_clean(["tool finished", "web_search", "/api/agent/start"])  # True``
        """
        return not self.candidates(texts)

    def dirty(self, items: Sequence[T], add_texts: Callable[[T, list[str]], bool | None]) -> set[int]:
        """Indices of the ``items`` (log records, spans) that redacting could change, with one scan for the batch.

        ``add_texts(item, flat)`` appends the item's strings to ``flat`` and answers True when redacting the item is
        only scanning them, False when it needs more (a sensitive key, a URL, a container: the item is marked), or
        None when there is nothing to redact. All strings of the batch then go through :meth:`candidates` at once,
        and an item with a candidate match is marked (found by bisection; matches are rare).

        Example: ``r.dirty(spans, add_span_texts)  # {3}``
        """
        flat: list[str] = []
        starts: list[int] = []  # where the strings of scanned[k] begin in flat (ascending)
        scanned: list[int] = []
        out: set[int] = set()
        for i, item in enumerate(items):
            n = len(flat)
            plain = add_texts(item, flat)
            if plain:
                starts.append(n)
                scanned.append(i)
            else:
                del flat[n:]
                if plain is False:
                    out.add(i)
        for j in self.candidates(flat):
            out.add(scanned[bisect_right(starts, j) - 1])
        return out

    def candidates(self, texts: Sequence[str]) -> set[int]:
        """Indices of the ``texts`` that may hold something to redact; :meth:`redact` returns every other one
        unchanged. For many short strings at once (a batch of log records: messages, field values, ids).

        The texts are joined by newlines and scanned together, one call into RE2 per 64 KiB instead of one per
        string; after a hit the scan resumes at the next string. A newline is a non-word character like a
        string's edge, so every match inside one string is a match in the join; a match that only exists across
        a newline marks a string that is clean (it is then redacted on its own, and comes back unchanged).
        Redactors with user patterns anchored on the text (``^``, ``$``) mark every string.

        Example: ``r.candidates(["all fine", "mail bob@example.com", "ok"])  # {1}``
        """
        prog = self._prog
        if prog.low is None or not self._joinable:
            return set(range(len(texts)))
        out: set[int] = set()
        limit = self.max_chars
        joined = "\n".join(texts)
        if joined.isascii() and max(map(len, texts), default=0) < limit:  # the common case, checked in C
            self._scan_joined(joined, texts, range(len(texts)), out)
            return out
        keep: list[int] = []
        for i, t in enumerate(texts):
            if t.isascii() and len(t) < limit:
                keep.append(i)
            else:
                out.add(i)  # redact() itself repairs the encoding and cuts over-long text
        self._scan_joined("\n".join(texts[i] for i in keep), texts, keep, out)
        return out

    def _scan_joined(self, joined: str, texts: Sequence[str], idx: Sequence[int], out: set[int]) -> None:
        """Mark in ``out`` the ``idx`` whose text may match; ``joined`` is those texts joined by newlines."""
        data = joined.encode()  # ASCII: byte offsets are str offsets
        if not idx:
            return
        bounds, unanchored, n = self._prog.bounds, self._prog.unanchored, len(data)
        starts: list[int] | None = None
        pos = 0
        while True:
            s = bounds.Match(unanchored, data, pos, n)[0][0]
            if s < 0:
                return
            if starts is None:  # where each string starts in the join, needed only after a hit
                starts = [0, *accumulate(len(texts[i]) + 1 for i in idx)]
            # A match starting on the newline before string j+1 (the card pattern consumes one character of
            # context) belongs to string j+1.
            j = bisect_right(starts, s + 1) - 1
            out.add(idx[j])
            if j + 1 >= len(idx):
                return
            pos = starts[j + 1] - 1  # from that newline on: the next string's own matches are all found

    def classify(self, value: str) -> str | None:
        """The kind of a value that is entirely one secret (e.g. ``"jwt"``), or None."""
        found: list[str] = []
        self._scan(value, found)
        return found[0] if found else None

    def redact_url(self, url: str) -> str:
        """Redact a URL: sensitive query parameters (token, api_key, code, ...), userinfo passwords,
        and anything the text detectors find. Encoding of untouched parts is preserved.

        Example: ``r.redact_url("/stream?token=eyJ...&x=1")`` -> ``'/stream?token=[REDACTED:jwt:..]&x=1'``
        """
        if not isinstance(url, str):
            return url
        q = url.find("?")
        if q >= 0:
            h = url.find("#", q)
            query = url[q + 1 :] if h < 0 else url[q + 1 : h]
            new_q = self.redact_query(query)
            if new_q is not query:
                url = url[: q + 1] + new_q + ("" if h < 0 else url[h:])
        return self.redact(url)

    def redact_query(self, query: str) -> str:
        """Redact the values of sensitive parameters in a query string ``a=1&token=...``."""
        if "=" not in query:
            return query
        params = query.split("&")
        changed = False
        for i, p in enumerate(params):
            k, eq, v = p.partition("=")
            if not eq or not v or v.startswith((_TAG_PREFIX, "%5BREDACTED")):
                continue
            name = unquote(k)
            if _TAG_PREFIX in name:
                # The name went through redaction already and was judged then, on its original text; judged again
                # now, the tag's kind ("secret") would read as a sensitive name and a second pass would differ.
                continue
            if self.is_sensitive_key(name) or name.lower() in URL_QUERY_KEYS:
                raw = unquote(v)
                params[i] = f"{k}={self.tag(self.classify(raw) or 'secret', raw)}"
                changed = True
        return "&".join(params) if changed else query

    def redact_value(self, obj: Any) -> Any:
        """Redact nested dicts/lists/tuples: values under sensitive keys are replaced whole, strings
        are scanned. Returns new containers; never mutates ``obj``. ``None``, booleans and numbers
        stay as they are; any other leaf (bytes, exceptions, dataclasses, arbitrary objects) becomes
        its text (see :func:`to_text`), scanned like any string.

        Example: ``r.redact_value({"user": {"password": "x", "note": "mail a@b.io"}})``
        """
        return self._value(obj, False, 0)

    def redact_attribute(self, key: str, value: Any) -> Any:
        """Redact one span/log attribute value (same object back when nothing changed)."""
        if isinstance(value, str):
            if self.is_sensitive_key(key):
                return self._force(value)
            if key in URL_ATTRIBUTES:
                return self.redact(self.redact_query(value)) if key == "url.query" else self.redact_url(value)
            if key in _HEAD_TAIL_ATTRIBUTES and len(value) > self.max_chars:
                return self.redact(truncate(value, self.max_chars, keep="middle"))
            return self.redact(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            # OTel allows bytes attributes; they are text often enough (a payload, a header) to scan.
            text = to_text(value, max_bytes=self.max_chars * 4)
            new = self._force(text) if self.is_sensitive_key(key) else self.redact(text)
            return value if new is text else new
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            new = [self.redact_attribute(key, v) for v in value]
            if any(a is not b for a, b in zip(new, value, strict=True)):
                return tuple(new)
            return value
        if (
            isinstance(value, (list, tuple))
            and all(x is None or isinstance(x, (bool, int, float)) for x in value)
            and not self.is_sensitive_key(key)
        ):
            return value  # same object: no copy of the span for a list of numbers
        # Containers get key rules and a scan; any other object is scanned in its text form.
        return self.redact_value({key: value})[key]

    def redact_attributes(self, attrs: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A redacted copy of ``attrs``, or None when nothing needed redaction (no copy made)."""
        if not attrs:
            return None
        out: dict[str, Any] | None = None
        for k, v in attrs.items():
            nv = self.redact_attribute(k, v)
            if nv is not v:
                if out is None:
                    out = dict(attrs)
                out[k] = nv
        return out

    # ------------------------------------------------------------------ internals
    def _force(self, value: Any) -> Any:
        if (
            value is None
            or isinstance(value, bool)
            or value == ""
            or (isinstance(value, str) and value.startswith(_TAG_PREFIX))
        ):
            return value
        if isinstance(value, (Mapping, list, tuple, set, frozenset)):
            return self._value(value, True, 0)
        return self.tag("secret", value if isinstance(value, str) else to_text(value, max_bytes=self.max_chars * 4))

    def _value(self, obj: Any, force: bool, depth: int) -> Any:
        if isinstance(obj, str):
            return self._force(obj) if force else self.redact(obj)
        if obj is None or isinstance(obj, (bool, int, float)):
            return self._force(obj) if force else obj  # _force keeps None and booleans
        if depth > _MAX_DEPTH:
            return "[REDACTED:depth]"
        if isinstance(obj, Mapping):
            return {
                k: self._value(v, True, depth + 1)
                if force or (isinstance(k, str) and self.is_sensitive_key(k))
                else self._value(v, False, depth + 1)
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple, set, frozenset)):
            items = [self._value(v, force, depth + 1) for v in obj]
            if isinstance(obj, list):
                return items
            if isinstance(obj, tuple):
                return tuple(items)
            return type(obj)(items)
        # Any other leaf (bytes, an exception, a dataclass, a client object) would be stringified
        # later by the JSON/OTLP encoders, after redaction: stringify it here and scan that text.
        text = to_text(obj, max_bytes=self.max_chars * 4)
        return self._force(text) if force else self.redact(text)

    def _allowed(self, secret: str, whole: str) -> bool:
        if secret in self._allow or whole in self._allow:
            return True
        return any(r.fullmatch(secret) for r in self._allow_res)

    def _scan(self, value: str, found: list[str]) -> None:
        """Record the kind of the first accepted match if it covers all of ``value``."""
        subject: Any = value.encode("utf-8", "surrogatepass") if self.engine == "re2" else value
        sp = self._prog.search(subject, 0)
        while sp is not None:
            res = self._judge(sp, subject)
            if res is not None:
                if sp[0] == (0, len(subject)) and res[0] != "secret":
                    found.append(res[0])
                return
            nxt = self._resume(sp)
            if nxt >= len(subject):
                return
            sp = self._prog.search(subject, nxt)

    def _judge(self, sp: tuple[tuple[int, int], ...], subject: Any) -> tuple[str, int, int] | None:
        """(kind, start, end of the part to replace) for an accepted match, else None."""
        c = self._prog.which(sp)
        start, end = sp[0]
        vs, ve = start, end
        for g in c.vgroups:
            if sp[g][0] >= 0:
                vs, ve = sp[g]
                break
        if start >= 10 and subject[start - 10 : start] in (_TAG_PREFIX, _TAG_PREFIX_B):
            return None  # inside one of our own tags: keeps redaction idempotent
        dec = _dec if isinstance(subject, bytes) else _same
        secret = dec(subject[vs:ve])
        whole = dec(subject[start:end])
        kind: str | None = c.det.kind
        if c.det.validate is not None:
            key = dec(subject[sp[c.kgroup][0] : sp[c.kgroup][1]]) if c.kgroup >= 0 and sp[c.kgroup][0] >= 0 else None
            scheme = dec(subject[sp[c.sgroup][0] : sp[c.sgroup][1]]) if c.sgroup >= 0 and sp[c.sgroup][0] >= 0 else None
            kind = c.det.validate(whole, secret, key, scheme)
        if kind is None or self._allowed(secret, whole):
            return None
        if kind in ("secret", "bearer", "authorization"):
            # A generic context (key=value, Authorization) holding a known token keeps its kind.
            inner = self.classify(secret) if len(secret) >= 20 else None
            if inner:
                kind = inner
        return kind, vs, ve

    def _replace_all(self, subject: AnyStr) -> AnyStr | None:
        """``subject`` with every accepted match replaced by its tag, or None when nothing is replaced.

        One loop for both engines: RE2 scans UTF-8 bytes, ``re`` scans text; only the tag's type differs.
        """
        sp = self._prog.search(subject, 0)
        if sp is None:
            return None
        pieces: list[AnyStr] = []
        last = 0
        while sp is not None:
            res = self._judge(sp, subject)
            if res is None:
                nxt = self._resume(sp)
            else:
                kind, vs, ve = res
                pieces.append(subject[last:vs])
                pieces.append(self._tag_as(kind, subject[vs:ve]))
                last = ve
                nxt = sp[0][1]
            if nxt >= len(subject):
                break
            sp = self._prog.search(subject, nxt)
        if not pieces:
            return None
        pieces.append(subject[last:])
        return subject[:0].join(pieces)

    def _tag_as(self, kind: str, secret: AnyStr) -> AnyStr:
        # The tag in the subject's own type (UTF-8 bytes for the RE2 scan).
        if isinstance(secret, str):
            return self.tag(kind, secret)
        return self.tag(kind, _dec(secret)).encode()

    def _resume(self, sp: tuple[tuple[int, int], ...]) -> int:
        """Where to continue after a rejected match (always forward, so the scan stays linear)."""
        start, end = sp[0]
        c = self._prog.which(sp)
        if c.det.resume == "value":
            for g in c.vgroups:
                if sp[g][0] > start:
                    return sp[g][0]
        return end if end > start else start + 1


def _dec(b: bytes) -> str:
    return b.decode("utf-8", "surrogatepass")


def _same(s: str) -> str:
    return s


# ---------------------------------------------------------------------------------------------------
# process-wide default

_default: Redactor | None = None
_default_lock = threading.Lock()


def default_redactor() -> Redactor:
    """The process-wide :class:`Redactor` used by :func:`redact` and the exporter wrappers."""
    global _default
    r = _default
    if r is None:
        with _default_lock:
            if _default is None:
                _default = Redactor()
            r = _default
    return r


def configure_redaction(redactor: Redactor | None = None, **options: Any) -> Redactor:
    """Replace the process-wide redactor (given, or built from ``Redactor`` keyword options).

    Example: ``configure_redaction(ip=True, patterns={"acme_id": r"ACME-[0-9]{6}"})``
    """
    global _default
    r = redactor if redactor is not None else Redactor(**options)
    with _default_lock:
        _default = r
    return r


def redact(text: str) -> str:
    """Redact secrets and personal data in ``text`` with the process-wide redactor.

    Example: ``redact("Authorization: Bearer abc.def.ghi123")`` -> ``'Authorization: Bearer [REDACTED:bearer:1a2b]'``
    """
    return default_redactor().redact(text)


def redact_value(obj: Any) -> Any:
    """Redact a nested dict/list structure with the process-wide redactor (key rules + text scan).

    Example: ``redact_value({"api_key": "abc", "msg": "hi"})`` -> ``{'api_key': '[REDACTED:secret:..]', 'msg': 'hi'}``
    """
    return default_redactor().redact_value(obj)


def redact_url(url: str) -> str:
    """Redact sensitive query parameters and credentials in a URL with the process-wide redactor.

    Example: ``redact_url("https://h/api/agent-run/1/stream?token=eyJ...")``
    """
    return default_redactor().redact_url(url)
