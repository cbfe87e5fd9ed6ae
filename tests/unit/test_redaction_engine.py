"""Unit tests for the redaction engine: detectors, tags, key rules, URLs, options, safety."""

from __future__ import annotations

import re
import time

import pytest

from agentpress_otel.redaction import Redactor, is_sensitive_key, luhn_ok, redact, redact_url, redact_value

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwicm9sZSI6ImF1dGhlbnRpY2F0ZWQifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
TAG = re.compile(r"\[REDACTED:([a-z_]+):([0-9a-f]{4})\]")


@pytest.fixture
def r() -> Redactor:
    return Redactor(hash_key=b"test-key")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("k=sk-proj-" + "a1B2" * 12, "openai_key"),
        ("sk-" + "A1b2C3d4E5" * 2 + "T3BlbkFJ" + "x9Y8z7W6v5" * 2, "openai_key"),
        ("sk-ant-api03-" + "Ab3_" * 23 + "AA", "anthropic_key"),
        ("AIzaSyD" + "x" * 32, "google_api_key"),
        ("AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        ("ghp_" + "aB3" * 12, "github_token"),
        ("github_pat_11ABCDEFG0123456789abc_" + "Z" * 59, "github_token"),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"),
        ("https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX", "slack_webhook"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
        (JWT, "jwt"),
        ("Authorization: Bearer abcdef0123456789.xyz", "bearer"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "basic_auth"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n-----END RSA PRIVATE KEY-----", "private_key"),
        ("postgres://app:s3cr3t@db:5432/x", "url_password"),
        ("password=hunter22", "secret"),
        ('{"client_secret": "abc def"}', "secret"),
        ("mail me: jane.doe@example.com", "email"),
        ("card 4111 1111 1111 1111", "card"),
        ("call +1 415 555 2671", "phone"),
    ],
)
def test_detectors(r: Redactor, text: str, kind: str) -> None:
    """Each detector tags its kind of secret in a sample text."""
    out = r.redact(text)
    assert f"[REDACTED:{kind}:" in out, out


def test_same_secret_same_tag_and_key_dependence() -> None:
    """The same secret gets the same tag wherever it appears, and the tag depends on the hash key."""
    a, b = Redactor(hash_key=b"one"), Redactor(hash_key=b"two")
    s = "token ghp_" + "aB3" * 12
    assert a.redact(s) == a.redact(s + "")
    assert TAG.search(a.redact(s)).group(2) == TAG.search(a.redact("x " + s)).group(2)  # type: ignore[union-attr]
    # The tag depends on the key. One 4-hex tag can collide (1 in 65,536); eight secrets all colliding cannot.
    secrets = [f"token ghp_{i}" + "aB3" * 12 for i in range(8)]
    assert any(a.redact(x) != b.redact(x) for x in secrets)
    assert TAG.fullmatch(a.redact(s).split(" ", 1)[1])


def test_clean_text_is_returned_unchanged_object(r: Redactor) -> None:
    """Text with nothing to redact is returned as the same object."""
    t = "plain log line with thread_id=abc and 42 items"
    assert r.redact(t) is t


def test_key_rules() -> None:
    """Sensitive key names are recognised and ordinary ones are not."""
    for k in (
        "password",
        "DB_PASSWORD",
        "X-Api-Key",
        "authorization",
        "http.request.header.cookie",
        "access_token",
        "client_secret",
        "apiKey",
        "refresh-token",
        "pwd",
    ):
        assert is_sensitive_key(k), k
    for k in (
        "max_tokens",
        "gen_ai.usage.input_tokens",
        "token_count",
        "api_key_id",
        "auth_method",
        "token_type",
        "session.id",
        "thread_id",
        "author",
        "user.id",
        "password_length",
    ):
        assert not is_sensitive_key(k), k


def test_redact_value_nested_never_mutates(r: Redactor) -> None:
    """redact_value() redacts nested structures by key and content without mutating the input."""
    obj = {
        "user": {"password": "x1", "note": "mail a@b.io"},
        "list": [{"api_key": 123}, "ok"],
        "t": ("sk_test_abcdefghijkl",),
    }
    snapshot = repr(obj)
    out = r.redact_value(obj)
    assert repr(obj) == snapshot
    assert out["user"]["password"].startswith("[REDACTED:secret:")
    assert out["user"]["note"].startswith("mail [REDACTED:email:")
    assert out["list"][0]["api_key"].startswith("[REDACTED:secret:")
    assert out["list"][1] == "ok"
    assert out["t"][0].startswith("[REDACTED:stripe_key:")
    assert redact_value({"token": None, "password": ""}) == {"token": None, "password": ""}


def test_url_query_redaction(r: Redactor) -> None:
    """redact_url() redacts sensitive query parameters, keeps the rest and the fragment, and is idempotent."""
    url = f"https://api.example.com/api/agent-run/1/stream?token={JWT}&page=2&code=abc#frag"
    out = r.redact_url(url)
    assert JWT not in out and "abc#" not in out
    assert "page=2" in out and out.endswith("#frag")
    assert "token=[REDACTED:jwt:" in out
    assert r.redact_url(out) == out
    assert redact_url("/health?x=1") == "/health?x=1"


def test_allowlist_and_user_patterns() -> None:
    """Allowlisted values and patterns are kept, and user patterns add their own tag."""
    r = Redactor(
        allowlist=["ops@example.com"], allow_patterns=[r".*@internal\.dev"], patterns={"acme_id": r"ACME-[0-9]{6}"}
    )
    out = r.redact("ops@example.com bob@internal.dev eve@corp.com ACME-123456")
    assert "ops@example.com" in out and "bob@internal.dev" in out
    assert "eve@corp.com" not in out and "[REDACTED:acme_id:" in out


def test_optional_detectors() -> None:
    """IP redaction is opt-in and phone redaction can be turned off."""
    text = "from 10.1.2.3 call +1 415 555 2671"
    assert "10.1.2.3" in Redactor().redact(text)
    assert "10.1.2.3" not in Redactor(ip=True).redact(text)
    assert "555 2671" in Redactor(phone=False).redact(text)
    with pytest.raises(ValueError, match="compile"):
        Redactor(patterns={"bad": r"(?<=x)y"})  # look-behind: not RE2, rejected up front
    with pytest.raises(ValueError):
        Redactor(patterns={"Bad Name": "x"})


def test_redos_pattern_is_linear() -> None:
    """A catastrophic-backtracking user pattern still runs in linear time."""
    r = Redactor(patterns={"evil": r"(a+)+$"})
    t0 = time.perf_counter()
    r.redact("a" * 30_000 + "!")
    assert time.perf_counter() - t0 < 2.0  # backtracking engines take hours here


def test_truncation_before_scanning() -> None:
    """Over-long text is truncated to max_chars before scanning, and the result is stable."""
    r = Redactor(max_chars=1000)
    out = r.redact("x" * 5000 + " sk-ant-api03-" + "a" * 40)
    assert len(out) == 1000 and out.endswith("chars cut]…")  # the one marker of _text.truncate
    assert r.redact(out) == out


def test_luhn() -> None:
    """The Luhn check accepts a valid card number and rejects a wrong check digit."""
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_stdlib_engine_agrees(r: Redactor) -> None:
    """The stdlib ``re`` engine gives the same output as the default engine."""
    s = Redactor(hash_key=b"test-key", engine="re")
    for text in (f"Bearer {JWT}", "password=abc123 and a@b.io", "héllo sk-ant-api03-" + "b" * 30 + " ✓"):
        assert s.redact(text) == r.redact(text)


def test_module_level_redact() -> None:
    """The module-level redact() uses the process-wide redactor."""
    assert "hunter22" not in redact("password: hunter22")


def test_lone_surrogates_become_encodable() -> None:
    """OTLP's protobuf encoder rejects lone surrogates; redaction hands the exporter valid UTF-8."""
    from agentpress_otel.redaction import redact as _redact

    out = _redact("bad \ud800 byte")
    out.encode("utf-8")  # must not raise
    assert out == "bad ? byte"


# ------------------------------------------------------------------------------------ audit fixes
OPENROUTER = "sk-or-v1-" + "0123456789abcdef" * 4
SK = "sk-proj-" + "Lk9" * 16


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("redis://:s3cretPw0rd@redis:6379/0", "s3cretPw0rd", "url_password"),  # no user before ':'
        ("DB_PASS=hunter2hunter2", "hunter2hunter2", "secret"),
        ("SMTP_PASS: Tr0ub4dor&3", "Tr0ub4dor&3", "secret"),
        ("pass=hunter22 user=bob", "hunter22", "secret"),
        ('{"ssn": "123-45-6789"}', "123-45-6789", "secret"),
        ("sessionid=abcdef0123456789abcdef; path=/", "abcdef0123456789abcdef", "secret"),
        ("signing_key=Zm9vYmFyYmF6cXV4", "Zm9vYmFyYmF6cXV4", "secret"),
        (f"router key {OPENROUTER} loaded", OPENROUTER, "openrouter_key"),
        # a JWT cut by a length limit: header and (part of the) claims, no signature
        (f"stream?t={JWT.rsplit('.', 1)[0]}", JWT.rsplit(".", 1)[0], "jwt"),
        (f"claims {JWT[:60]}…[truncated]", JWT[:60], "jwt"),
    ],
)
def test_detector_misses_found_by_audit(r: Redactor, text: str, secret: str, kind: str) -> None:
    """Secrets the audit found missed are now tagged, by both engines."""
    for engine in (r, Redactor(hash_key=b"test-key", engine="re")):
        out = engine.redact(text)
        assert secret not in out and f"[REDACTED:{kind}:" in out, out


@pytest.mark.parametrize(
    "text",
    [
        "token_type=Bearer expires_in=3600",
        "secret=False",
        "secret=NONE",
        "auth=ok",
        "authorization: granted",
        "Authorization: Bearer",
        "token: 1234",
        "api_key=sk-...abcd",
        "pass=1 fail=0",
        '{"score": 0.1234567890123456, "cost_usd": 0.0041111111111111}',
        "ts_ns=1767616496789123456 duration_ns=2571515729833",
        "snowflake 1234567890123456789 and 41111111111111111",  # no issuer prefix / 17 digits
        "amount 4111111111111111.25 and v1.4111111111111111",  # a decimal, after a '.'
    ],
)
def test_false_positives_found_by_audit(r: Redactor, text: str) -> None:
    """Texts the audit found wrongly redacted are now left alone, by both engines."""
    assert r.redact(text) == text
    assert Redactor(hash_key=b"test-key", engine="re").redact(text) == text


def test_cards_still_found_next_to_the_new_boundaries(r: Redactor) -> None:
    """Card numbers next to punctuation and spaces are still found after the boundary changes."""
    for text in ("4111111111111111", "card:4111 1111 1111 1111.", '"cc": "5555-5555-5555-4444"', "(3782 822463 10005)"):
        assert "[REDACTED:card:" in r.redact(text), text


def test_floats_and_ns_integers_are_never_touched() -> None:
    """Random floats, ns epochs and durations in JSON log lines: the old card pattern altered ~3% of them."""
    import json
    import random

    rng = random.Random(11)
    r = Redactor(hash_key=b"k")
    lines = [
        json.dumps(
            {
                "score": rng.random(),
                "cost_usd": rng.random() / 100,
                "ts_ns": rng.randint(10**18, 2 * 10**18),
                "duration_ns": rng.randint(10**6, 10**13),
            }
        )
        for _ in range(3000)
    ]
    altered = [x for x in lines if r.redact(x) != x]
    assert altered == []


def test_key_rules_found_by_audit() -> None:
    """Key names from the audit are classified right (``DB_PASS`` sensitive, ``bypass`` not)."""
    for k in ("DB_PASS", "smtpPass", "sessionid", "PHPSESSID", "signing_key", "encryption_key", "ssh_key", "user_pin"):
        assert is_sensitive_key(k), k
    for k in ("bypass", "compass", "session.id", "session_id", "ssh_key_id", "spin", "pass_count"):
        assert not is_sensitive_key(k), k


class _Client:
    def __repr__(self) -> str:
        return f"Client(api_key={SK})"


class _Raises:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__


def test_non_string_leaves_are_stringified_and_scanned(r: Redactor) -> None:
    """Non-string leaves (bytes, exceptions, objects) are stringified and scanned; unprintable ones say so."""
    import dataclasses

    @dataclasses.dataclass
    class Cfg:
        api: str

    obj = {
        "payload": SK.encode(),
        "err": ValueError(f"auth failed with {SK}"),
        "client": _Client(),
        "cfg": Cfg(SK),
        "bad": _Raises(),
        "n": 3,
        "f": 0.5,
        "ok": True,
        "none": None,
        "pin": 1234,  # a number under a sensitive key is still replaced
    }
    out = r.redact_value(obj)
    assert SK not in repr(out)
    assert out["payload"].startswith("[REDACTED:openai_key:")
    assert out["err"].startswith("ValueError: auth failed with [REDACTED:openai_key:")
    assert out["client"].startswith("Client(api_key=[REDACTED:openai_key:")
    assert "[REDACTED:openai_key:" in out["cfg"]
    assert out["bad"] == "<unprintable _Raises>"
    assert (out["n"], out["f"], out["ok"], out["none"]) == (3, 0.5, True, None)
    assert out["pin"].startswith("[REDACTED:secret:")
    # attributes (span and log exporters): bytes are scanned too, clean bytes come back as they were
    assert r.redact_attribute("http.body", SK.encode()).startswith("[REDACTED:openai_key:")
    clean = b"hello"
    assert r.redact_attribute("http.body", clean) is clean
    nums = [1, 2, 3]
    assert r.redact_attribute("sizes", nums) is nums


def test_hash_key_from_environment_correlates_across_redactors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same hash key from env makes two redactors tag alike; different or missing keys do not."""
    secrets = [f"token ghp_{i}" + "aB3" * 12 for i in range(8)]
    monkeypatch.setenv("AGENTPRESS_OTEL_REDACT_HASH_KEY", "shared-key-0123456789")
    a, b = Redactor(), Redactor()  # two processes with the same configuration
    assert [a.redact(s) for s in secrets] == [b.redact(s) for s in secrets]
    monkeypatch.setenv("AGENTPRESS_OTEL_REDACT_HASH_KEY", "short")  # too short: ignored, random per redactor
    c, d = Redactor(), Redactor()
    assert [c.redact(s) for s in secrets] != [d.redact(s) for s in secrets]
    monkeypatch.delenv("AGENTPRESS_OTEL_REDACT_HASH_KEY")
    e, f = Redactor(), Redactor()
    assert [e.redact(s) for s in secrets] != [f.redact(s) for s in secrets]


def test_hash_key_option_in_config() -> None:
    """The hash key is read from env with its source, hidden in repr, and too short a key is ignored."""
    from agentpress_otel._config import ConfigError, load_config

    cfg = load_config({}, env={"AGENTPRESS_OTEL_REDACT_HASH_KEY": "shared-key-0123456789"})
    assert cfg.redact_hash_key == "shared-key-0123456789"
    assert cfg.sources["redact_hash_key"] == "AGENTPRESS_OTEL_REDACT_HASH_KEY"
    assert "shared-key" not in repr(cfg) and str(cfg.redact_hash_key) == "***"  # doctor prints str()
    assert load_config({}, env={}).redact_hash_key is None
    with pytest.raises(ConfigError, match="redact_hash_key"):
        load_config({"redact_hash_key": "short"}, env={})
    with pytest.warns(RuntimeWarning, match="AGENTPRESS_OTEL_REDACT_HASH_KEY"):
        assert load_config({}, env={"AGENTPRESS_OTEL_REDACT_HASH_KEY": "short"}).redact_hash_key is None


def test_long_stack_trace_keeps_head_and_innermost_frames() -> None:
    """A long stack trace keeps its head and innermost frames within max_chars, redacted."""
    r = Redactor(max_chars=2000)
    frames = "".join(f'  File "/app/m{i}.py", line {i}, in f{i}\n    call()\n' for i in range(400))
    tb = "Traceback (most recent call last):\n" + frames + f"RuntimeError: failed with {SK}\n"
    out = r.redact_attribute("exception.stacktrace", tb)
    assert len(out) <= 2000
    assert out.startswith("Traceback (most recent call last):")
    assert "m399.py" in out and "RuntimeError: failed with [REDACTED:openai_key:" in out and SK not in out
    assert "chars cut]" in out


def test_short_text_over_a_small_limit_is_cut_too() -> None:
    """With a small ``max_chars`` a clean ASCII text just over it is cut as well (the one-call check for short
    strings must not skip the limit)."""
    r = Redactor(max_chars=100)
    out = r.redact("x" * 500)
    assert len(out) == 100 and out.endswith("chars cut]…")
