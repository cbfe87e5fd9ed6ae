"""The compiled short-string pre-check of Redactor.redact (``redaction/_precheck.c``, needles in ``_needles.py``).

It may answer "clean" (no RE2 call) only when no built-in detector can match. Every soundness test here checks that
claim against RE2 itself (the redactor's one-call set ``_any_of``, the same program redact() asks): whenever RE2
finds a match, the pre-check must have said "maybe". The texts come from the detectors' own patterns (hypothesis
generates matches of each pattern and embeds them in clean log text), the key words spelled out from the secret
detector's regex, the labelled corpus, and fragments of every detector. A further test drops each needle in turn
and shows a detector match that the reduced table would then miss: none of them is decoration.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentpress_otel.redaction import Redactor
from agentpress_otel.redaction import _needles as needles
from agentpress_otel.redaction._detectors import BUILTIN, DEFAULT_OFF

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "tests" / "data" / "redaction_corpus.jsonl"
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_redaction import LINES, SECRET_LINE, short_lines, short_values  # noqa: E402

_parser: Any = importlib.import_module("re._parser")
_sre: Any = importlib.import_module("re._constants")

ASCII = st.characters(codec="ascii")
#: Clean log text around a generated match: ordinary words, separators, quotes, escapes, digits.
CONTEXT = st.sampled_from(["", " ", "\n", "x", "a_", '"', "'", "=", ":", "\\n", "%20", "9", "-", ".", "/", "(", "ok "])
SETTINGS = settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _clean_fn() -> Callable[[str], bool]:
    if needles.CLEAN is None:
        pytest.skip("the compiled pre-check (agentpress_otel.redaction._precheck) is not built: pip install -e .")
    return needles.CLEAN


@functools.cache
def _everything() -> Redactor:
    """Every built-in detector the pre-check serves (all but ip, which turns it off)."""
    return Redactor(hash_key=b"precheck", email=True, phone=True, card=True, ip=False)


def _unsound(clean: Callable[[str], bool], texts: Iterable[str]) -> list[str]:
    """The texts the pre-check calls clean although RE2 finds a match in them."""
    any_of = _everything()._any_of
    return [t for t in texts if clean(t) and any_of(t.encode("utf-8", "surrogatepass"))]


def test_built_and_active_for_the_default_redactor() -> None:
    """The extension is built (editable install, wheel) and the default redactor uses it; under CI=true a missing
    build fails here (conftest turns the skip into a failure)."""
    clean = _clean_fn()
    assert {d.kind for d in BUILTIN} - DEFAULT_OFF == needles.COVERED
    assert Redactor()._clean is clean
    assert Redactor(disabled=["email"], card=False)._clean is clean  # a subset can only match less


def test_tables_were_read_from_the_current_detectors() -> None:
    """The needle tables are tied to the detector patterns they were read from: change a detector and this fails
    (and the pre-check turns itself off) until _needles is re-read and REVIEWED updated."""
    assert needles.patterns_digest() == needles.REVIEWED, (
        "a built-in detector changed: re-read the needles in redaction/_needles.py from it, then set REVIEWED "
        f"to {needles.patterns_digest()!r}"
    )
    changed = [*BUILTIN[:-1], type(BUILTIN[-1])(BUILTIN[-1].kind, BUILTIN[-1].pattern + "|x")]
    assert needles.patterns_digest(changed) != needles.REVIEWED


@pytest.mark.parametrize("detector", [d for d in BUILTIN if d.kind not in DEFAULT_OFF], ids=lambda d: d.kind)
def test_generated_matches_of_each_detector_are_never_called_clean(detector: Any) -> None:
    """Hypothesis writes matches of each detector's own pattern (ASCII), embeds them in clean text; wherever RE2
    finds a match in the result, the pre-check says "maybe"."""
    clean = _clean_fn()
    any_of = _everything()._any_of
    seen: list[bool] = []

    @SETTINGS
    @given(
        CONTEXT,
        st.from_regex(re.compile(detector.pattern, re.ASCII), fullmatch=True, alphabet=ASCII),
        CONTEXT,
        st.sampled_from(short_lines(random.Random(1), 50)),
    )
    def check(before: str, match: str, after: str, line: str) -> None:
        for text in (before + match + after, f"{line} {before}{match}{after} {line[::-1]}"):
            hit = bool(any_of(text.encode()))
            seen.append(hit)
            assert not (hit and clean(text)), f"{detector.kind}: RE2 matches {text!r}, the pre-check said clean"

    check()
    assert sum(seen) >= 60, f"{detector.kind}: too few generated texts matched RE2 ({sum(seen)})"


def _language(items: Any) -> set[str]:
    """Every string a finite regex (a parsed sequence: literals, small classes, alternations, bounded repeats)
    matches, in the case written."""
    out = {""}
    for op, av in items:
        out = {a + b for a in out for b in _piece(op, av)}
    return out


def _piece(op: Any, av: Any) -> set[str]:
    if op is _sre.LITERAL:
        return {chr(av)}
    if op is _sre.IN:
        chars: set[str] = set()
        for o, a in av:
            if o is _sre.LITERAL:
                chars.add(chr(a))
            elif o is _sre.RANGE:
                chars.update(chr(c) for c in range(a[0], a[1] + 1))
            else:
                raise ValueError(f"class item {o}")
        return chars
    if op is _sre.BRANCH:
        return set().union(*(_language(b) for b in av[1]))
    if op is _sre.SUBPATTERN:
        return _language(av[-1])
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        lo, hi, sub = av
        assert hi <= 4, "unbounded repeat in a finite part"
        one = _language(sub)
        return {"".join(p) for k in range(lo, hi + 1) for p in itertools.product(sorted(one), repeat=k)}
    raise ValueError(f"op {op}")


def _secret_keys() -> set[str]:
    """The key endings the "secret" detector accepts, spelled out from its regex: its ``k`` group without the
    leading ``[A-Za-z0-9_.-]*`` (key word, then nothing, a suffix word or one or two digits)."""
    detector = next(d for d in BUILTIN if d.kind == "secret")
    state = _parser.parse(detector.pattern)
    k = state.state.groupdict["k"] if hasattr(state, "state") else state.pattern.groupdict["k"]
    group = next(av for op, av in state if op is _sre.SUBPATTERN and av[0] == k)
    body = list(group[-1])
    assert body[0][0] is _sre.MAX_REPEAT and body[0][1][1] == _sre.MAXREPEAT  # the free-form key start
    return _language(body[1:])


def test_every_key_word_of_the_secret_detector_before_a_separator_is_maybe() -> None:
    """All ~7,700 key endings of the secret detector (every key word with every suffix and digit tail, read from
    its regex, not from our tables), in four cases and with quotes and spaces before ':' or '='."""
    clean = _clean_fn()
    keys = _secret_keys()
    assert len(keys) > 5000 and {"password", "api_key", "cvc", "otp", "pin12", "token_b64"} <= keys
    texts = []
    for key in sorted(keys):
        for variant, sep in ((key, "="), (key.upper(), ": "), (key.title(), '":"'), (f"ctx.{key}", ' \\" = ')):
            texts.append(f"note {variant}{sep}Xy9-value")
    assert len(_everything()._any_of(texts[0].encode())) > 0
    bad = _unsound(clean, texts)
    assert not bad, bad[:10]


def test_labelled_corpus_benchmark_lines_and_planted_secrets() -> None:
    """Every text of the labelled corpus (positives and near-misses), the benchmark's lines and its planted-secret
    line, whole and in every 40-character window: never clean where RE2 matches. The corpus positives (one per
    detector family and placement) are all answered "maybe"."""
    clean = _clean_fn()
    rows = [json.loads(x) for x in CORPUS.read_text().splitlines() if x.strip()]
    texts = [str(x["text"]) for x in rows] + LINES + [SECRET_LINE] + short_lines(random.Random(2), 500)
    windows = {t[i : i + 40] for t in texts for i in range(0, max(1, len(t) - 39), 3)}
    bad = _unsound(clean, [*texts, *sorted(windows)])
    assert not bad, bad[:10]
    positives = [str(x["text"]) for x in rows if x["kind"]]
    assert len(positives) > 100
    assert not [t for t in positives if clean(t)]


#: Pieces of every detector: token prefixes, key words and tails, separators, quotes, digit groups, '@', '+', '('.
_FRAGMENTS = sorted(
    {t for ts in needles.TOKENS.values() for t in ts}
    | {w for ws in needles.WORDS_ANY_CASE.values() for w in ws}
    | {w for ws in needles.KEYED.values() for w in ws}
    | {t.replace("#", "7") for t in needles.TAILS}
    | {"=", ":", " ", '"', "'", "\\", "\n", "\t", "@", "+", "(", ")", ".", "-", "_", "/", "://", "%3D", "x", "Q"}
    | {"1", "42", "555", "4111", "1234", "0000", "1111", "5105", "3782", "6011", "44", "20", "com", "a.b", "eyJ."}
)
_DIGITISH = "0123456789 .-+()x:_"


@SETTINGS
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=14), st.sampled_from(["", "a", " "]))
def test_fuzzed_detector_fragments(parts: list[str], pad: str) -> None:
    """Strings glued from detector fragments (any case): never clean where RE2 matches."""
    clean = _clean_fn()
    for text in ("".join(parts), pad.join(p.upper() if len(p) % 2 else p for p in parts)):
        assert not _unsound(clean, [text]), text


@settings(max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.text(alphabet=_DIGITISH, max_size=32))
def test_fuzzed_digit_strings(text: str) -> None:
    """Digits with every separator of the card and phone patterns: the chain and '+'/'(' checks are enough."""
    assert not _unsound(_clean_fn(), [text]), text


def test_digit_checks_are_tight() -> None:
    """The smallest card and phone numbers are caught; one digit fewer is clean (RE2 agrees there is nothing)."""
    clean = _clean_fn()
    any_of = _everything()._any_of
    for hit in ("555.123.4567", "555-123-4567", "30569309025904", "3056 930902 5904", "+1 555 123 4567",
                "(555) 123-4567", "x@y.io"):  # fmt: skip
        assert any_of(hit.encode()) and not clean(hit), hit
    for miss in ("55.123.4567", "3056930902590", "1234567890", "(55) 123", "+0 12", "12.345.6789"):
        assert not any_of(miss.encode()) and clean(miss), miss


def _necessity_examples(needle: str) -> list[str]:
    """Texts that match ``needle``'s detector and contain no other needle."""
    fill = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0"
    special = {
        "-----BEGIN": [" RSA PRIVATE KEY-----"], "https://hooks.slack.com/": ["services/T0A1B2C3/B4D5E6F7/abcdefgh"],
        "eyJ": ["hbGciOi.eyJzdWIi"], "xapp-": ["1-abcdefghij12"], "A3T": ["XQWERTYUIOPLKJHGF"],
        "bearer": [" abcdefgh12"], "basic": [" dXNlcjpwYXNz"], "sk-": ["proj-" + fill],
    }  # fmt: skip
    tails = [*special.get(needle, []), "QWERTYUIOPLKJHGF", fill]
    return [f"got {v}{t} ok" for t in tails for v in {needle, needle.upper(), needle.title()}]


def _drop_one(table: int, needle: bytes) -> tuple[list[Any], list[Any], list[Any]]:
    full = needles.needle_tables()
    reduced = [list(t) for t in full]
    reduced[table] = [n for n in full[table] if n[0] != needle]
    assert len(reduced[table]) == len(full[table]) - 1
    return reduced[0], reduced[1], reduced[2]


def test_every_needle_is_needed() -> None:
    """Drop any one token prefix, key word or key tail from the C tables and some detector match is then called
    clean: the soundness tests above would fail. (The tables are restored afterwards.)"""
    _clean_fn()
    any_of = _everything()._any_of
    tokens, keywords, tails = needles.needle_tables()
    cases: list[tuple[int, bytes, list[str]]] = []
    for raw, _ in tokens:
        cases.append((0, raw, _necessity_examples(raw.decode())))
    for raw, _ in keywords:
        w = raw.decode()
        cases.append((1, raw, [f"{w}=hunter2x", f'"{w.upper()}": "hunter2x"']))
    for raw, _ in tails:
        t = raw.decode().replace("\x01", "7")
        cases.append((2, raw, [f"secret{t}=hunter2x", f"TOKEN{t.upper()} : hunter2x"]))
    try:
        for table, needle, texts in cases:
            texts = [t for t in texts if any_of(t.encode())]
            assert texts, f"no example matches RE2 for {needle!r}"
            reduced = needles.load(*_drop_one(table, needle))
            assert reduced is not None
            assert _unsound(reduced, texts), f"{needle!r} can be dropped: no detector match depends on it"
            needles.load(tokens, keywords, tails)
            assert not _unsound(needles.CLEAN or reduced, texts)
    finally:
        needles.load(tokens, keywords, tails)


def test_decides_most_clean_short_strings_without_re2() -> None:
    """The point of it: on the benchmark's clean 40-120 B lines and short values, RE2 is called for few."""
    _clean_fn()
    r = Redactor(hash_key=b"precheck")
    calls: list[bytes] = []
    real = r._any_of

    def spy(data: bytes) -> Any:
        calls.append(data)
        return real(data)

    r._any_of = spy
    lines = short_lines(random.Random(3), 2000)
    values = short_values(random.Random(4), 2000)
    assert all(r.redact(x) is x for x in lines + values)
    assert len(calls) <= 0.05 * (len(lines) + len(values)), len(calls)
    assert r.redact(SECRET_LINE) != SECRET_LINE and len(calls) > 0


@pytest.mark.parametrize(
    ("options", "text", "kind"),
    [
        ({"ip": True}, "host 10.0.0.1 up", "ip"),
        ({"patterns": {"acme_id": r"ACME-[0-9]{6}"}}, "id ACME-123456", "acme_id"),
    ],
)
def test_off_with_user_patterns_and_ip(options: dict[str, Any], text: str, kind: str) -> None:
    """The pre-check knows the built-in detectors only: a user pattern or ip turns it off for that redactor."""
    clean = _clean_fn()
    assert clean(text)  # the pre-check alone would call it clean
    r = Redactor(hash_key=b"precheck", **options)
    assert r._clean is None
    assert r.redact(text) == text.replace(text.split()[1], r.tag(kind, text.split()[1]))


def test_non_ascii_and_lone_surrogates_take_the_old_path() -> None:
    """Non-ASCII text is "maybe" (RE2 decides, lone surrogates are repaired as before); so is a str subclass."""
    clean = _clean_fn()
    r = Redactor(hash_key=b"precheck")
    old = Redactor(hash_key=b"precheck")
    old._clean = None

    class Text(str):
        pass

    for text in ("café ok", "ok \ud800 there", "mail jöhn@example.com", "naïve password=hunter2", Text("ok")):
        assert not clean(text)
        assert r.redact(text) == old.redact(text)
    assert r.redact("ok \ud800 there") == "ok ? there"
    assert not clean(b"password")  # type: ignore[arg-type]


_FALLBACK = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "agentpress_otel.redaction._precheck":
            raise ImportError("blocked for the test")
sys.meta_path.insert(0, Block())
from agentpress_otel.redaction import Redactor, _needles
r = Redactor(hash_key=b"fallback")
assert _needles.CLEAN is None and r._clean is None
texts = json.load(sys.stdin)
print(json.dumps([r.redact(t) for t in texts]))
"""


def test_pure_python_fallback_gives_identical_results() -> None:
    """With the extension's import blocked (a machine without a compiler), the package imports, the pre-check is
    off and every text redacts exactly as with it."""
    _clean_fn()
    rows = [json.loads(x) for x in CORPUS.read_text().splitlines() if x.strip()]
    texts = [str(x["text"]) for x in rows] + LINES + [SECRET_LINE] + short_lines(random.Random(5), 300)
    texts += short_values(random.Random(6), 300)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", _FALLBACK], input=json.dumps(texts), capture_output=True, text=True, env=env,
        timeout=120, check=True,
    )  # fmt: skip
    r = Redactor(hash_key=b"fallback")
    assert r._clean is not None
    assert json.loads(out.stdout) == [r.redact(t) for t in texts]
