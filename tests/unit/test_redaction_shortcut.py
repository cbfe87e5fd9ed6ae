"""The short-value shortcut of Redactor.redact: strings of at most 11 characters from [A-Za-z0-9_./-] skip RE2.

The shortcut is sound only if no built-in detector can match such a string. These tests check that claim against
the detectors themselves (RE2's one-call set, the RE2 bounds program and the stdlib engine) on every string of a
digit-and-separator alphabet up to 11 characters and on a seeded fuzz of detector fragments, and show the bound
is tight (a 12-character phone number does match).
"""

from __future__ import annotations

import itertools
import json
import random
import string
from pathlib import Path

import pytest

from agentpress_otel.redaction import Redactor
from agentpress_otel.redaction._detectors import BUILTIN
from agentpress_otel.redaction._engine import _TINY, _TINY_CHARS

TINY_ALPHABET = string.ascii_letters + string.digits + "_./-"
CORPUS = Path(__file__).parents[1] / "data" / "redaction_corpus.jsonl"
# Pieces of every built-in detector that fit the alphabet (prefixes, digit groups, separators).
FRAGMENTS = [
    "sk-", "sk-ant-", "sk-proj-", "sk-or-v1-", "sk_live_", "rk_test_", "whsec_", "AKIA", "ASIA", "A3T", "AIza",
    "ghp_", "github_pat_", "glpat-", "hf_", "xoxb-", "xapp-1-", "eyJ", ".eyJ", "-----BEGIN", "4111", "5555", "3782",
    "6011", "555", "123", "4567", "1.1", "10.0.0", ".", "-", "_", "/", "0", "1", "9", "a", "Z", "x", "e", "J",
]  # fmt: skip


def _everything() -> Redactor:
    """Every built-in detector except ip (which turns the shortcut off)."""
    return Redactor(hash_key=b"tiny", email=True, phone=True, card=True, ip=False)


def _fuzz(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        parts = []
        while sum(map(len, parts)) < rng.randint(1, 14):
            parts.append(rng.choice(FRAGMENTS) if rng.random() < 0.6 else rng.choice(TINY_ALPHABET))
        out.add("".join(parts)[: rng.randint(1, _TINY)])
    return sorted(out)


def _assert_no_match(r: Redactor, texts: list[str], *, stdlib: bool) -> None:
    fallback = Redactor(hash_key=b"tiny", ip=False, engine="re") if stdlib else None
    for t in texts:
        data = t.encode()
        assert len(t) <= _TINY and not data.translate(None, _TINY_CHARS), t  # a string the shortcut answers
        assert not r._any_of(data), f"RE2 set matches {t!r}: the shortcut would miss it"
        assert r._prog.search(data, 0) is None, f"RE2 bounds program matches {t!r}"
        assert fallback is None or fallback._prog.search(t, 0) is None, f"stdlib engine matches {t!r}"


def test_covers_every_builtin_detector_but_ip() -> None:
    """The soundness checks below run against every built-in detector (ip excluded by design)."""
    assert set(_everything().kinds) == {d.kind for d in BUILTIN} - {"ip"}
    assert set(TINY_ALPHABET.encode()) == set(_TINY_CHARS)


def test_no_detector_matches_any_short_digit_and_separator_string() -> None:
    """Every string of up to _TINY characters over "1.-" (phone numbers, cards, ip-like and float shapes)."""
    texts = ["".join(p) for n in range(1, _TINY + 1) for p in itertools.product("1.-", repeat=n)]
    assert len(texts) > 250_000
    _assert_no_match(_everything(), texts, stdlib=False)


def test_no_detector_matches_fuzzed_detector_fragments() -> None:
    """20,000 seeded strings built from detector prefixes, digit groups and separators, cut to _TINY characters."""
    _assert_no_match(_everything(), _fuzz(20_000, seed=19), stdlib=True)


def test_no_detector_matches_any_short_window_of_the_labelled_corpus() -> None:
    """Every substring of the labelled corpus (its planted secrets and their surroundings included) that the
    shortcut would answer: about 300,000 distinct windows of 1 to _TINY characters."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    allowed = set(TINY_ALPHABET)
    windows = {
        t[i : i + n]
        for t in (str(x["text"]) for x in rows)
        for i in range(len(t))
        for n in range(1, _TINY + 1)
        if i + n <= len(t) and allowed.issuperset(t[i : i + n])
    }
    assert len(windows) > 100_000
    _assert_no_match(_everything(), sorted(windows), stdlib=False)


def test_bound_is_tight() -> None:
    """One character more and a detector can match: the shortcut must stop below 12 characters."""
    r = _everything()
    assert len("555.123.4567") > _TINY
    assert r._any_of(b"555.123.4567")
    assert r.redact("555.123.4567").startswith("[REDACTED:phone:")


def test_short_values_skip_re2() -> None:
    """A short id-like value returns unchanged without the RE2 call; anything else still makes it."""
    r = Redactor(hash_key=b"tiny")
    r._clean = None  # the compiled pre-check (test_redaction_precheck.py) would answer most of these first
    calls: list[bytes] = []
    real = r._any_of

    def spy(data: bytes) -> object:
        calls.append(data)
        return real(data)

    r._any_of = spy
    for value in ("gpt-4o-mini", "web_search", "/api/health", "POST", "200", "v1.2.3", "0.00123", ""):
        assert r.redact(value) is value
    assert calls == []
    for value in ("gpt-4o-mini!", "a" * 12, "a b", "x:y", "é"):
        assert r.redact(value) is value
    assert len(calls) == 5


@pytest.mark.parametrize(
    ("options", "text", "kind"),
    [({"ip": True}, "10.0.0.1", "ip"), ({"patterns": {"short_id": r"id-[0-9]{2}"}}, "id-42", "short_id")],
)
def test_shortcut_off_when_a_short_string_can_match(options: dict[str, object], text: str, kind: str) -> None:
    """The ip detector and user patterns can match short strings: those redactors always scan."""
    r = Redactor(hash_key=b"tiny", **options)  # type: ignore[arg-type]
    assert r.redact(text).startswith(f"[REDACTED:{kind}:")
