"""The short-string pre-check: it may only ever say "clean" when the full RE2 scan finds nothing.

Each test compares a redactor with the pre-check against the same redactor with it switched off, on
the labelled corpus, the planted secrets of the other tests, and random strings built from the
detectors' own anchors (so every anchor is exercised in many contexts, case and separators).
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel.redaction import Redactor
from agentpress_otel.redaction import _prefilter as pf
from agentpress_otel.redaction._detectors import BUILTIN, DEFAULT_OFF

CORPUS = Path(__file__).parents[1] / "data" / "redaction_corpus.jsonl"


def _pair() -> tuple[Redactor, Redactor]:
    fast = Redactor(hash_key=b"prefilter-test")
    slow = Redactor(hash_key=b"prefilter-test")
    slow._prefilter = False
    return fast, slow


def _texts() -> list[str]:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    out: list[str] = []
    for x in rows:
        t = str(x["text"])
        out += [t, t.upper(), t.lower(), t.swapcase()]
        # short windows around each secret: the pre-check only runs on strings up to MAX_CHARS
        for s in x["secrets"]:
            i = t.find(str(s))
            if i >= 0:
                out.append(t[max(0, i - 30) : i + len(str(s)) + 10])
    return out


def test_every_builtin_detector_is_covered() -> None:
    """A new built-in detector must get an anchor in the pre-check (or the pre-check turns itself off)."""
    assert {d.kind for d in BUILTIN} - DEFAULT_OFF == set(pf.COVERED)
    assert Redactor()._prefilter
    assert not Redactor(ip=True)._prefilter
    assert not Redactor(patterns={"acme": r"ACME-[0-9]{6}"})._prefilter


def test_never_says_clean_when_the_engine_redacts_corpus() -> None:
    fast, slow = _pair()
    found = 0
    for t in _texts():
        expected = slow.redact(t)
        if expected != t:
            found += 1
            if t.isascii() and len(t) <= pf.MAX_CHARS:
                assert pf.maybe_secret(t), t
        assert fast.redact(t) == expected, t
    assert found > 900  # the corpus' positives (and their case variants) really were exercised


# Anchors of every built-in detector, and filler that looks like log text around them.
_PIECES = [
    "password", "Passwd", "PWD", "pin", "secret", "signing-key", "signature", "ssh_key", "sessionid", "PHPSESSID",
    "ssn", "token", "API_KEY", "x-api-key", "access_key", "auth", "Authorization", "Proxy-Authorization",
    "credentials", "Cookie", "set-cookie", "cvv", "encryption_key", "jwt", "otp", "_value", ".hash", "-b64", "2",
    "42", ":", "=", " : ", " = ", '"', "'", '\\"', "\\", "sk-", "sk_live_", "rk_test_", "whsec_", "sk-ant-",
    "sk-or-v1-", "sk-proj-", "AKIA", "ASIA", "A3TX", "AIza", "ghp_", "gho_", "github_pat_", "glpat-", "hf_",
    "xoxb-", "xapp-1-", "eyJ", ".eyJ", "Bearer ", "bearer\t", "Basic ", "BASIC ", "@", "user@example.com",
    "redis://:", "https://hooks.slack.com/services/", "-----BEGIN RSA PRIVATE KEY-----", "+1 ", "+44 20 ",
    "(415) ", "555-", "555.", "0100", "4111 1111 1111 1111", "378282246310005", "4111-1111-1111-1111",
    "3782 822463 10005", "3056 930902 5904", "-", "_", ".", "/", " ", "%3D", "\\n",
]  # fmt: skip
_FILL = string.ascii_letters + string.digits + "-_./ :=@+"


def _random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.6:
            parts.append(rng.choice(_PIECES))
        else:
            parts.append("".join(rng.choice(_FILL) for _ in range(rng.randint(1, 40))))
    return "".join(parts)


def test_never_says_clean_when_the_engine_redacts_random_anchors() -> None:
    fast, slow = _pair()
    rng = random.Random(19)
    changed = 0
    for _ in range(30_000):
        t = _random_text(rng)
        expected = slow.redact(t)
        if expected != t:
            changed += 1
            assert pf.maybe_secret(t), t
        got = fast.redact(t)
        assert got == expected, t
    assert changed > 2_000


class _CountingProgram:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def Match(self, *args: Any) -> Any:
        self.calls += 1
        return self.inner.Match(*args)


@pytest.mark.parametrize(
    "text",
    [
        "Starting thread execution for thread 3f2a1c4e-9b8d-4e2f-a1b2-c3d4e5f60718",
        "LLM call completed in 2.35s with model anthropic/claude-sonnet-4",
        "Tool web_search returned 10 results in 1.2s",
        "run_thread thread_id=3f2a1c4e model=claude-3-5-sonnet prompt_tokens=1234 duration_ms=2345.6",
        'GET /api/agent-run/8b7c6d5e-4f3a-2b1c-0d9e-8f7a6b5c4d3e/stream 200 12.3ms',
        "chat gpt-4o-mini",
    ],
)
def test_clean_short_strings_never_reach_the_regex_engine(text: str) -> None:
    r = Redactor()
    counter = _CountingProgram(r._bounds)
    r._bounds = counter
    assert r.redact(text) is text
    assert counter.calls == 0
    # and a planted secret in the same line still goes through the engine and is redacted
    leaked = text + " api_key=Zx81kLmN0pQrStUv"
    assert "Zx81kLmN0pQrStUv" not in r.redact(leaked)
    assert counter.calls >= 1
