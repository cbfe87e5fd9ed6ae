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
    out = r.redact(text)
    assert f"[REDACTED:{kind}:" in out, out


def test_same_secret_same_tag_and_key_dependence() -> None:
    a, b = Redactor(hash_key=b"one"), Redactor(hash_key=b"two")
    s = "token ghp_" + "aB3" * 12
    assert a.redact(s) == a.redact(s + "")
    assert TAG.search(a.redact(s)).group(2) == TAG.search(a.redact("x " + s)).group(2)  # type: ignore[union-attr]
    # The tag depends on the key. One 4-hex tag can collide (1 in 65,536); eight secrets all colliding cannot.
    secrets = [f"token ghp_{i}" + "aB3" * 12 for i in range(8)]
    assert any(a.redact(x) != b.redact(x) for x in secrets)
    assert TAG.fullmatch(a.redact(s).split(" ", 1)[1])


def test_clean_text_is_returned_unchanged_object(r: Redactor) -> None:
    t = "plain log line with thread_id=abc and 42 items"
    assert r.redact(t) is t


def test_key_rules() -> None:
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
    url = f"https://api.example.com/api/agent-run/1/stream?token={JWT}&page=2&code=abc#frag"
    out = r.redact_url(url)
    assert JWT not in out and "abc#" not in out
    assert "page=2" in out and out.endswith("#frag")
    assert "token=[REDACTED:jwt:" in out
    assert r.redact_url(out) == out
    assert redact_url("/health?x=1") == "/health?x=1"


def test_allowlist_and_user_patterns() -> None:
    r = Redactor(
        allowlist=["ops@example.com"], allow_patterns=[r".*@internal\.dev"], patterns={"acme_id": r"ACME-[0-9]{6}"}
    )
    out = r.redact("ops@example.com bob@internal.dev eve@corp.com ACME-123456")
    assert "ops@example.com" in out and "bob@internal.dev" in out
    assert "eve@corp.com" not in out and "[REDACTED:acme_id:" in out


def test_optional_detectors() -> None:
    text = "from 10.1.2.3 call +1 415 555 2671"
    assert "10.1.2.3" in Redactor().redact(text)
    assert "10.1.2.3" not in Redactor(ip=True).redact(text)
    assert "555 2671" in Redactor(phone=False).redact(text)
    with pytest.raises(ValueError, match="compile"):
        Redactor(patterns={"bad": r"(?<=x)y"})  # look-behind: not RE2, rejected up front
    with pytest.raises(ValueError):
        Redactor(patterns={"Bad Name": "x"})


def test_redos_pattern_is_linear() -> None:
    r = Redactor(patterns={"evil": r"(a+)+$"})
    t0 = time.perf_counter()
    r.redact("a" * 30_000 + "!")
    assert time.perf_counter() - t0 < 2.0  # backtracking engines take hours here


def test_truncation_before_scanning() -> None:
    r = Redactor(max_chars=1000)
    out = r.redact("x" * 5000 + " sk-ant-api03-" + "a" * 40)
    assert len(out) == 1000 and "truncated" in out
    assert r.redact(out) == out


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_stdlib_engine_agrees(r: Redactor) -> None:
    s = Redactor(hash_key=b"test-key", engine="re")
    for text in (f"Bearer {JWT}", "password=abc123 and a@b.io", "héllo sk-ant-api03-" + "b" * 30 + " ✓"):
        assert s.redact(text) == r.redact(text)


def test_module_level_redact() -> None:
    assert "hunter22" not in redact("password: hunter22")


def test_lone_surrogates_become_encodable() -> None:
    """OTLP's protobuf encoder rejects lone surrogates; redaction hands the exporter valid UTF-8."""
    from agentpress_otel.redaction import redact as _redact

    out = _redact("bad \ud800 byte")
    out.encode("utf-8")  # must not raise
    assert out == "bad ? byte"
