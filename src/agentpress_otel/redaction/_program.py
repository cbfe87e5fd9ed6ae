"""The compiled form of a detector list: one program per engine, and the search that finds the next match.

Split from the engine (which judges matches, builds tags and walks structures) because this part's one job is
"where is the next candidate match, and which detector made it", and it is the part tuned for speed.

Why RE2 (google-re2): it scans in linear time with a DFA, so a user pattern like ``(a+)+$`` cannot stall a log
call, and one pass over all detectors runs at hundreds of MB/s. We scan UTF-8 bytes with RE2 because its Python
wrapper re-maps byte offsets to str offsets on every match; offsets in bytes are exact. The stdlib engine stays
as a fallback (same patterns, written without nested unbounded quantifiers) for platforms without an RE2 wheel.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from agentpress_otel.redaction._detectors import BUILTIN, GATES, Detector

try:  # pragma: no cover - exercised implicitly
    import re2 as _re2

    HAVE_RE2 = True
except ImportError:  # pragma: no cover
    _re2 = None
    HAVE_RE2 = False

Engine = Literal["re2", "re"]
#: Spans of every group of a match (RE2 path: plus a trailing (detector, detector) slot).
Spans = tuple[tuple[int, int], ...]

_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z0-9_]+>")
_DIGIT = re.compile(r"\d")
_MISSING: Any = object()
#: Texts on which the RE2 set and the bounds program must agree (see Program._build_re2_smalls).
_PROBES = (b"all clean here", b"password=hunter2 for bob@example.com", b"card 4111 1111 1111 1111",
           b"Authorization: Bearer abcdefgh12345678")  # fmt: skip


def compile_user(engine: Engine, pattern: str, what: str) -> Any:
    """A user pattern compiled for ``engine``; ValueError (naming ``what``) when it does not compile."""
    try:
        if engine == "re2":
            assert _re2 is not None
            return _re2.compile(pattern)
        return re.compile(pattern)
    except Exception as exc:  # re2.error / re.error: re-raised as a ValueError naming the pattern
        raise ValueError(f"{what} {pattern!r} does not compile ({exc}); RE2 syntax, no look-around") from exc


def _kv_boundary(pattern: str) -> str:
    """For the backtracking engine, start key names only at a key boundary; otherwise every
    character of every word is retried as a key start (quadratic in the word length). The card
    pattern's consumed "not after '.' or a word character" becomes a look-behind, which lets the
    engine skip ahead to digits (RE2 has no look-behind; its DFA does not need one)."""
    return pattern.replace("k>[A-Za-z0-9_.-]*", "k>(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*").replace(
        "(?:^|[^.0-9A-Za-z_])(?P<v>", "(?<![.0-9A-Za-z_])(?P<v>"
    )


class Compiled:
    """One detector inside the alternation: its group numbers there."""

    __slots__ = ("det", "dgroup", "kgroup", "sgroup", "vgroups")

    def __init__(self, det: Detector, dgroup: int, vgroups: tuple[int, ...], kgroup: int, sgroup: int) -> None:
        self.det = det
        self.dgroup = dgroup
        self.vgroups = vgroups
        self.kgroup = kgroup
        self.sgroup = sgroup


class Program:
    """All detectors compiled for one engine. ``search(subject, pos)`` returns the spans of the next match."""

    def __init__(self, detectors: tuple[Detector, ...], engine: Engine) -> None:
        self.engine = engine
        parts = [f"(?P<d{i}>" + d.pattern.replace("(?P<", f"(?P<d{i}_") + ")" for i, d in enumerate(detectors)]
        combined = "|".join(parts)
        self.low: Any = None
        self.any_of: Any = None
        if engine == "re2":
            self._build_re2(combined)
        else:
            # Backtracking engine: start key names only at a key boundary, or every character of
            # every word is retried as a key start (quadratic in word length).
            self.rx: Any = re.compile("|".join(_kv_boundary(p) for p in parts), re.ASCII)
            self._gates = [GATES.get(d.kind, ()) if d in BUILTIN else () for d in detectors]
            self._last: tuple[str, list[int], dict[int, Any]] | None = None
        self.ngroups = int(self.rx.groups)
        index: dict[str, int] = {
            (k.decode() if isinstance(k, bytes) else k): int(v) for k, v in self.rx.groupindex.items()
        }
        self.compiled = tuple(
            Compiled(
                d,
                index[f"d{i}"],
                tuple(index[f"d{i}_{g}"] for g in ("vq", "vs", "v") if f"d{i}_{g}" in index),
                index.get(f"d{i}_k", -1),
                index.get(f"d{i}_s", -1),
            )
            for i, d in enumerate(detectors)
        )
        self._re_smalls: list[tuple[re.Pattern[str], list[tuple[int, int]]]] = []
        if engine == "re":
            for i, d in enumerate(detectors):
                small = re.compile(_kv_boundary(d.pattern), re.ASCII)  # RE2 classes are ASCII
                self._re_smalls.append((small, [(v, index[f"d{i}_{k}"]) for k, v in small.groupindex.items()]))
        if self.low is not None:
            self._build_re2_smalls(detectors, index)

    def _build_re2(self, combined: str) -> None:
        assert _re2 is not None
        opts = _re2.Options()
        opts.max_mem = 64 << 20  # the alternation is large; the default 8 MiB DFA budget thrashes
        self._opts = opts
        self.rx = _re2.compile(combined.encode(), opts)
        self.low = getattr(self.rx, "_regexp", None)
        anchors = getattr(_re2, "_Anchor", None)
        if self.low is None or not hasattr(self.low, "Match") or anchors is None:
            self.low = None  # a wrapper version without the internals: use the public API
            return
        self.unanchored = anchors.UNANCHORED
        self._anchor_start = anchors.ANCHOR_START
        self._anchor_both = anchors.ANCHOR_BOTH
        self.bounds: Any = _re2.compile(_NAMED_GROUP.sub("(?:", combined).encode(), opts)._regexp

    def _build_re2_smalls(self, detectors: tuple[Detector, ...], index: dict[str, int]) -> None:
        assert _re2 is not None
        self._set: Any = _re2.Set.FullMatchSet(self._opts)
        self._smalls: list[tuple[Any, list[tuple[int, int]]]] = []
        for i, d in enumerate(detectors):
            if self._set.Add(_NAMED_GROUP.sub("(?:", d.pattern).encode()) != i:
                raise AssertionError("RE2 set indices out of order")  # pragma: no cover
            small = _re2.compile(d.pattern.encode(), self._opts)
            names = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in small.groupindex.items()}
            self._smalls.append((small._regexp, [(v, index[f"d{i}_{k}"]) for k, v in names.items()]))
        self._set.Compile()
        # "Does anything match anywhere?" for one short string: an unanchored RE2 set over the same patterns
        # answers in one call with a single argument, about 0.27 us cheaper than the bounds program's Match
        # (pybind11 converts fewer arguments). Its many-match DFA never bails out on slow input (RE2 exempts
        # it); it only fails if one DFA state does not fit the memory budget, which the probes below catch.
        any_set = _re2.Set.SearchSet(self._opts)
        for d in detectors:
            any_set.Add(_NAMED_GROUP.sub("(?:", d.pattern).encode())
        any_set.Compile()
        self.any_of = any_set._set.Match  # [] when nothing matches
        for probe in _PROBES:
            if bool(self.any_of(probe)) != (self.bounds.Match(self.unanchored, probe, 0, len(probe))[0][0] >= 0):
                self.any_of = None  # pragma: no cover - the set disagrees: every check goes through bounds
                break

    def search(self, subject: Any, pos: int) -> Spans | None:
        """Spans of every group of the next match at or after ``pos`` (None when there is none).

        With RE2 we call the compiled program directly: the wrapper's per-group accessors re-query
        the group count on every call and cost more than the scan itself.
        """
        if self.low is not None:
            # Stage 1: the capture-free program finds the match bounds with the DFA alone.
            # Stage 2: the capturing program, anchored on those bounds, fills the groups on a short span.
            s, e = self.bounds.Match(self.unanchored, subject, pos, len(subject))[0]
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
                    spans = [(-1, -1)] * (self.ngroups + 1)
                    spans[0] = spans[self.compiled[i].dgroup] = (s, e)
                    for a, b in mapping:
                        spans[b] = got[a]
                    spans.append((i, i))  # the detector, so which() need not search for it
                    return tuple(spans)
            spans = self.low.Match(self._anchor_start, subject, s, e)
            return None if spans[0][0] < 0 else tuple(spans)
        if isinstance(subject, str) and self._re_smalls:
            return self._search_multi(subject, pos)
        m = self.rx.search(subject, pos)
        if m is None:
            return None
        if isinstance(m, re.Match):
            return m.regs
        return tuple(m.span(i) for i in range(self.ngroups + 1))

    def _search_multi(self, text: str, pos: int) -> Spans | None:
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
        spans = [(-1, -1)] * (self.ngroups + 1)
        spans[0] = spans[self.compiled[bi].dgroup] = best.span()
        for a, b in self._re_smalls[bi][1]:
            spans[b] = best.span(a)
        spans.append((bi, bi))
        return tuple(spans)

    def which(self, sp: Spans) -> Compiled:
        """The detector that produced the match ``sp``."""
        # The RE2 path puts the detector index in a trailing slot (see search).
        if len(sp) > self.ngroups + 1:
            return self.compiled[sp[-1][0]]
        for c in self.compiled:
            if sp[c.dgroup][0] >= 0:
                return c
        raise AssertionError("match without a detector group")  # pragma: no cover
