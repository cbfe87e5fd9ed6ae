"""The redaction engine: one RE2 alternation over all detectors, validated matches, keyed-hash tags.

Why RE2 (google-re2): it scans in linear time with a DFA, so a user pattern like ``(a+)+$`` cannot
stall a log call, and one pass over all detectors runs at hundreds of MB/s; the stdlib ``re``
alternation of the same patterns manages a few MB/s. The stdlib engine stays as a fallback (same
patterns, written without nested unbounded quantifiers) for platforms without an RE2 wheel.

We scan UTF-8 bytes with RE2 because its Python wrapper re-maps byte offsets to str offsets on every
match; offsets in bytes are exact, and non-ASCII text round-trips unchanged.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import unquote

from agentpress_otel._options import env_value
from agentpress_otel.redaction._detectors import (
    BUILTIN,
    DEFAULT_OFF,
    GATES,
    URL_QUERY_KEYS,
    Detector,
    is_sensitive_key,
    normalize_key,
)

try:  # pragma: no cover - exercised implicitly
    import re2 as _re2

    _HAVE_RE2 = True
except ImportError:  # pragma: no cover
    _re2 = None
    _HAVE_RE2 = False

Engine = Literal["re2", "re"]

_TAG_PREFIX = "[REDACTED:"
_TAG_PREFIX_B = _TAG_PREFIX.encode()
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: attribute names whose values are URLs or query strings (query parameters get key rules).
URL_ATTRIBUTES = frozenset({"url.full", "url.query", "http.url", "http.target", "url.original", "server.url"})
_MAX_DEPTH = 32
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z0-9_]+>")
_DIGIT = re.compile(r"\d")
_MISSING: Any = object()
#: Attribute names whose over-long values keep head and tail (the innermost frames are at the end).
_HEAD_TAIL_ATTRIBUTES = frozenset({"exception.stacktrace", "exception", "stack", "stack_info"})


def default_hash_key() -> bytes:
    """The tag key when none is given: ``AGENTPRESS_OTEL_REDACT_HASH_KEY`` (UTF-8, 16+ characters) if
    set, so tags correlate across processes and restarts; otherwise 32 random bytes per redactor."""
    # Through the options table (so doctor can name the source); a too-short key resolves to None there.
    key = env_value("redact_hash_key")
    return str.encode(key, "utf-8") if key else os.urandom(32)


def cut_middle(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters keeping its head (a third) and its tail (two
    thirds), with a marker saying how much went. For stack traces: the outermost frames and the
    innermost frames plus the exception line are both kept."""
    if len(text) <= limit:
        return text
    marker = f"\n…[{len(text) - limit} chars cut]…\n"
    # The marker's own length is part of the limit; recompute once with the exact number.
    marker = f"\n…[{len(text) - limit + len(marker)} chars cut]…\n"
    keep = limit - len(marker)
    if keep <= 0:
        return text[-limit:]
    head = keep // 3
    return text[:head] + marker + text[len(text) - (keep - head) :]


def to_text(obj: Any, max_bytes: int = 1 << 20) -> str:
    """The text form of a non-string leaf, never raising: bytes decoded (UTF-8, invalid bytes
    replaced), dates in ISO 8601, anything else ``str()``, then ``repr()``, then a placeholder."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj[:max_bytes]).decode("utf-8", "replace")
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, BaseException):  # "ValueError: msg": str() alone would drop the type
        try:
            msg = str(obj)
        except Exception:
            msg = "<unprintable message>"
        return f"{type(obj).__name__}: {msg}" if msg else type(obj).__name__
    for fn in (str, repr):
        try:
            text = fn(obj)
            if isinstance(text, str):
                return text
        except Exception:  # noqa: S112 - a user __str__/__repr__ may raise; try the next form
            continue
    return f"<unprintable {type(obj).__name__}>"


def _kv_boundary(pattern: str) -> str:
    """For the backtracking engine, start key names only at a key boundary; otherwise every
    character of every word is retried as a key start (quadratic in the word length). The card
    pattern's consumed "not after '.' or a word character" becomes a look-behind, which lets the
    engine skip ahead to digits (RE2 has no look-behind; its DFA does not need one)."""
    return pattern.replace("k>[A-Za-z0-9_.-]*", "k>(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*").replace(
        "(?:^|[^.0-9A-Za-z_])(?P<v>", "(?<![.0-9A-Za-z_])(?P<v>"
    )


class _Compiled:
    __slots__ = ("det", "dgroup", "kgroup", "sgroup", "vgroups")

    def __init__(self, det: Detector, dgroup: int, vgroups: tuple[int, ...], kgroup: int, sgroup: int) -> None:
        self.det = det
        self.dgroup = dgroup
        self.vgroups = vgroups
        self.kgroup = kgroup
        self.sgroup = sgroup


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
            engine = "re2" if _HAVE_RE2 else "re"
        if engine == "re2" and not _HAVE_RE2:
            raise ValueError("engine='re2' needs the google-re2 package")
        if max_chars < 64:
            raise ValueError("max_chars must be >= 64")
        self.engine: Engine = engine
        self.max_chars = max_chars
        self._key = hash_key if hash_key is not None else default_hash_key()
        self._tags: dict[tuple[str, str], str] = {}
        self._allow = frozenset(allowlist)
        self._extra_keys = frozenset(normalize_key(k) for k in sensitive_keys)
        self._allow_res = [self._compile_user(p, "allow pattern") for p in allow_patterns]
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
            self._compile_user(pat, f"pattern {kind!r}")
            user.append(Detector(kind, pat))
        self._detectors = tuple(user) + tuple(d for d in BUILTIN if d.kind not in off)
        self._build()

    # ------------------------------------------------------------------ construction
    def _compile_user(self, pattern: str, what: str) -> Any:
        try:
            if self.engine == "re2":
                assert _re2 is not None
                return _re2.compile(pattern)
            return re.compile(pattern)
        except Exception as exc:  # re2.error / re.error
            raise ValueError(f"{what} {pattern!r} does not compile ({exc}); RE2 syntax, no look-around") from exc

    def _build(self) -> None:
        parts = []
        for i, d in enumerate(self._detectors):
            parts.append(f"(?P<d{i}>" + d.pattern.replace("(?P<", f"(?P<d{i}_") + ")")
        combined = "|".join(parts)
        if self.engine == "re2":
            assert _re2 is not None
            opts = _re2.Options()
            opts.max_mem = 64 << 20  # the alternation is large; the default 8 MiB DFA budget thrashes
            self._rx: Any = _re2.compile(combined.encode(), opts)
            self._low: Any = getattr(self._rx, "_regexp", None)
            anchors = getattr(_re2, "_Anchor", None)
            if self._low is None or not hasattr(self._low, "Match") or anchors is None:
                self._low = None  # a wrapper version without the internals: use the public API
            else:
                self._unanchored = anchors.UNANCHORED
                self._anchor_start = anchors.ANCHOR_START
                self._anchor_both = anchors.ANCHOR_BOTH
                bare = _NAMED_GROUP.sub("(?:", combined)
                self._bounds: Any = _re2.compile(bare.encode(), opts)._regexp
        else:
            # Backtracking engine: start key names only at a key boundary, or every character of
            # every word is retried as a key start (quadratic in word length).
            self._rx = re.compile("|".join(_kv_boundary(p) for p in parts), re.ASCII)
            self._low = None
            self._gates = [GATES.get(d.kind, ()) if d in BUILTIN else () for d in self._detectors]
            self._last: tuple[str, list[int], dict[int, Any]] | None = None
        self._ngroups = int(self._rx.groups)
        index: dict[str, int] = {
            (k.decode() if isinstance(k, bytes) else k): int(v) for k, v in self._rx.groupindex.items()
        }
        self._compiled = tuple(
            _Compiled(
                d,
                index[f"d{i}"],
                tuple(index[f"d{i}_{g}"] for g in ("vq", "vs", "v") if f"d{i}_{g}" in index),
                index.get(f"d{i}_k", -1),
                index.get(f"d{i}_s", -1),
            )
            for i, d in enumerate(self._detectors)
        )
        self._re_smalls: list[tuple[re.Pattern[str], list[tuple[int, int]]]] = []
        if self.engine == "re":
            for i, d in enumerate(self._detectors):
                small = re.compile(_kv_boundary(d.pattern), re.ASCII)  # RE2 classes are ASCII
                self._re_smalls.append((small, [(v, index[f"d{i}_{k}"]) for k, v in small.groupindex.items()]))
        if self._low is not None:
            assert _re2 is not None
            self._set: Any = _re2.Set.FullMatchSet(opts)
            self._smalls: list[tuple[Any, list[tuple[int, int]]]] = []
            for i, d in enumerate(self._detectors):
                if self._set.Add(_NAMED_GROUP.sub("(?:", d.pattern).encode()) != i:
                    raise AssertionError("RE2 set indices out of order")  # pragma: no cover
                small = _re2.compile(d.pattern.encode(), opts)
                names = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in small.groupindex.items()}
                self._smalls.append((small._regexp, [(v, index[f"d{i}_{k}"]) for k, v in names.items()]))
            self._set.Compile()

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

    def is_sensitive_key(self, key: str) -> bool:
        """True when a field named ``key`` holds a secret. Example: ``r.is_sensitive_key("api_key")``."""
        return is_sensitive_key(key, self._extra_keys)

    def redact(self, text: str) -> str:
        """Return ``text`` with every detected secret replaced by a tag (the same object if clean).

        Text longer than ``max_chars`` is cut to ``max_chars`` first (cost is linear in length).

        Example: ``Redactor().redact("password=hunter2")`` -> ``'password=[REDACTED:secret:9c1e]'``
        """
        if type(text) is not str:
            if not isinstance(text, str):
                return text
        elif self._low is not None and text.isascii() and len(text) <= self.max_chars:
            # The common case, a clean ASCII string (a log message, an attribute value), in one call
            # into RE2's DFA and no Python frames: per short string that was most of the cost.
            data = text.encode()
            if self._bounds.Match(self._unanchored, data, 0, len(data))[0][0] < 0:
                return text
            out = self._scan_bytes(data)
            return text if out is None else out.decode("utf-8", "surrogatepass")
        if len(text) > self.max_chars:
            marker = f"…[truncated {len(text) - self.max_chars} chars]"
            text = text[: self.max_chars - len(marker)] + marker
        if not text:
            return text
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: OTLP (protobuf) cannot encode them
                text = text.encode("utf-8", "replace").decode("utf-8")
        if self.engine == "re2":
            data = text.encode("utf-8", "surrogatepass")
            out = self._scan_bytes(data)
            return text if out is None else out.decode("utf-8", "surrogatepass")
        res = self._scan_str(text)
        return text if res is None else res

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
                return self.redact_query(value) if key == "url.query" else self.redact_url(value)
            if key in _HEAD_TAIL_ATTRIBUTES and len(value) > self.max_chars:
                return self.redact(cut_middle(value, self.max_chars))
            return self.redact(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            # OTel allows bytes attributes; they are text often enough (a payload, a header) to scan.
            text = to_text(value, self.max_chars * 4)
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
        return self.tag("secret", value if isinstance(value, str) else to_text(value, self.max_chars * 4))

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
        text = to_text(obj, self.max_chars * 4)
        return self._force(text) if force else self.redact(text)

    def _allowed(self, secret: str, whole: str) -> bool:
        if secret in self._allow or whole in self._allow:
            return True
        return any(r.fullmatch(secret) for r in self._allow_res)

    def _search(self, subject: Any, pos: int) -> tuple[tuple[int, int], ...] | None:
        """Spans of every group of the next match at or after ``pos`` (None when there is none).

        With RE2 we call the compiled program directly: the wrapper's per-group accessors re-query
        the group count on every call and cost more than the scan itself.
        """
        if self._low is not None:
            # Stage 1: the capture-free program finds the match bounds with the DFA alone.
            # Stage 2: the capturing program, anchored on those bounds, fills the groups on a short span.
            s, e = self._bounds.Match(self._unanchored, subject, pos, len(subject))[0]
            if s < 0:
                return None
            # Which detector: an RE2 set (DFA only) over the span; then that detector's own small
            # program fills its groups. The big capturing program is ~5x slower (its BitState/NFA
            # cost grows with program size) and stays only as the fallback.
            hits = self._set.Match(subject[s:e]) if e > s else None
            if hits:
                i = min(hits)
                small, mapping = self._smalls[i]
                got = small.Match(self._anchor_both, subject, s, e)
                if got[0][0] >= 0:
                    spans = [(-1, -1)] * (self._ngroups + 1)
                    spans[0] = spans[self._compiled[i].dgroup] = (s, e)
                    for a, b in mapping:
                        spans[b] = got[a]
                    spans.append((i, i))  # the detector, so _which need not search for it
                    return tuple(spans)
            spans = self._low.Match(self._anchor_start, subject, s, e)
            return None if spans[0][0] < 0 else spans
        if isinstance(subject, str) and self._re_smalls:
            return self._search_multi(subject, pos)
        m = self._rx.search(subject, pos)
        if m is None:
            return None
        if isinstance(m, re.Match):
            return m.regs
        return tuple(m.span(i) for i in range(self._ngroups + 1))

    def _search_multi(self, text: str, pos: int) -> tuple[tuple[int, int], ...] | None:
        """stdlib engine: one search per detector whose gate substrings occur in ``text``, merged
        leftmost-first (ties go to the earlier detector, as in the alternation).

        A backtracking alternation retries every detector at every offset; separate searches let
        each pattern use its literal prefix, and gates skip detectors that cannot match at all.
        Each detector's next match is cached per text, so a scan stays one pass per detector.
        """
        st = self._last
        if pos == 0 or st is None or st[0] is not text:  # every scan starts at 0: fresh state
            low = text.lower()
            digit = _DIGIT.search(text) is not None
            active = [
                i
                for i, gates in enumerate(self._gates)
                if not gates or any((digit if g == "0-9" else g in low) for g in gates)
            ]
            st = (text, active, {})
            self._last = st  # one tuple assignment: safe when threads share the redactor
        _, active, cache = st
        best: re.Match[str] | None = None
        bi = -1
        for i in active:
            m = cache.get(i, _MISSING)
            if m is _MISSING or (m is not None and m.start() < pos):
                m = self._re_smalls[i][0].search(text, pos)
                cache[i] = m
            if m is not None and (best is None or m.start() < best.start()):
                best, bi = m, i
        if best is None:
            return None
        spans = [(-1, -1)] * (self._ngroups + 1)
        spans[0] = spans[self._compiled[bi].dgroup] = best.span()
        for a, b in self._re_smalls[bi][1]:
            spans[b] = best.span(a)
        spans.append((bi, bi))
        return tuple(spans)

    def _scan(self, value: str, found: list[str]) -> None:
        """Record the kind of the first accepted match if it covers all of ``value``."""
        subject: Any = value.encode("utf-8", "surrogatepass") if self.engine == "re2" else value
        sp = self._search(subject, 0)
        while sp is not None:
            res = self._judge(sp, subject)
            if res is not None:
                if sp[0] == (0, len(subject)) and res[0] != "secret":
                    found.append(res[0])
                return
            nxt = self._resume(sp)
            if nxt >= len(subject):
                return
            sp = self._search(subject, nxt)

    def _which(self, sp: tuple[tuple[int, int], ...]) -> _Compiled:
        # The RE2 path puts the detector index in a trailing slot (see _search).
        if len(sp) > self._ngroups + 1:
            return self._compiled[sp[-1][0]]
        for c in self._compiled:
            if sp[c.dgroup][0] >= 0:
                return c
        raise AssertionError("match without a detector group")  # pragma: no cover

    def _judge(self, sp: tuple[tuple[int, int], ...], subject: Any) -> tuple[str, int, int] | None:
        """(kind, start, end of the part to replace) for an accepted match, else None."""
        c = self._which(sp)
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

    def _scan_bytes(self, data: bytes) -> bytes | None:
        sp = self._search(data, 0)
        if sp is None:
            return None
        pieces: list[bytes] = []
        last = 0
        while sp is not None:
            res = self._judge(sp, data)
            if res is None:
                nxt = self._resume(sp)
            else:
                kind, vs, ve = res
                pieces.append(data[last:vs])
                pieces.append(self.tag(kind, _dec(data[vs:ve])).encode())
                last = ve
                nxt = sp[0][1]
            if nxt >= len(data):
                break
            sp = self._search(data, nxt)
        if not pieces:
            return None
        pieces.append(data[last:])
        return b"".join(pieces)

    def _scan_str(self, text: str) -> str | None:
        sp = self._search(text, 0)
        if sp is None:
            return None
        pieces: list[str] = []
        last = 0
        while sp is not None:
            res = self._judge(sp, text)
            if res is None:
                nxt = self._resume(sp)
            else:
                kind, vs, ve = res
                pieces.append(text[last:vs])
                pieces.append(self.tag(kind, text[vs:ve]))
                last = ve
                nxt = sp[0][1]
            if nxt >= len(text):
                break
            sp = self._search(text, nxt)
        if not pieces:
            return None
        pieces.append(text[last:])
        return "".join(pieces)

    def _resume(self, sp: tuple[tuple[int, int], ...]) -> int:
        """Where to continue after a rejected match (always forward, so the scan stays linear)."""
        start, end = sp[0]
        c = self._which(sp)
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
