"""The needles of the compiled short-string pre-check (``_precheck.c``), read off the built-in detectors.

Redactor.redact decides most clean short strings (a log message, an attribute value) without calling RE2: the
C scan answers "no built-in detector can match this text" when none of these needles occurs, and "maybe"
otherwise (RE2 decides). That answer must be SOUND: every match of a detector contains one of its needles.

- Token detectors (``_B`` then a literal prefix): the prefix (``sk-`` covers the Anthropic, OpenRouter and
  OpenAI keys; ``bearer``/``basic`` in any case).
- Keyed detectors (``secret``, ``authorization``, ``cookie``): ``:`` or ``=`` after an optional quote and
  whitespace, right after a key ending (any case) in a key word and an optional tail (a suffix word with an
  optional ``_``/``.``/``-`` joiner, or one or two digits).
- ``email``/``url_password`` need ``@``; ``phone`` needs ``+`` and a digit, ``(ddd)``, or digit runs of 3, 3
  and 4 joined by ``.``/``-``; ``card`` a run of 14-19 digits or 4-digit-led groups, first digit 2-6 (these
  checks are fixed in the C scan).

The tables are hand-read from the patterns in ``_detectors.BUILTIN``; :data:`REVIEWED` pins the digest of the
patterns they were read from. When a detector changes, the digest differs and the pre-check turns itself off
(RE2 decides everything, as before) until the needles are re-read and the digest updated:
tests/unit/test_redaction_precheck.py fails until then. That file also checks the tables against RE2: every
detector's own generated matches are answered "maybe", and dropping any one needle lets some match through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from agentpress_otel.redaction._detectors import BUILTIN

try:  # the optional compiled part: a machine without a C compiler installs without it (RE2 decides everything)
    from agentpress_otel.redaction import _precheck  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - exercised by the fallback test in a subprocess
    _precheck = None

#: Literal prefixes of the token detectors' secrets (case-sensitive, as in their patterns).
TOKENS: dict[str, tuple[str, ...]] = {
    "private_key": ("-----BEGIN",),
    "slack_webhook": ("https://hooks.slack.com/",),
    "anthropic_key": ("sk-",),
    "openrouter_key": ("sk-",),
    "openai_key": ("sk-",),
    "stripe_key": ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"),
    "google_api_key": ("AIza",),
    "aws_access_key": ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab_token": ("glpat-",),
    "huggingface_token": ("hf_",),
    "slack_token": (*(f"xox{c}-" for c in "abposre"), "xapp-"),
    "jwt": ("eyJ",),
}
#: Scheme words matched in any case (``(?i:bearer)\s+``, ``(?i:basic)\s+``).
WORDS_ANY_CASE: dict[str, tuple[str, ...]] = {"bearer": ("bearer",), "basic_auth": ("basic",)}

# The key words of the "secret" detector's ``k`` group, spelled out (every [_-]? variant), in any case.
_SECRET_WORDS = (
    "pass", "password", "passwords", "passwd", "passphrase", "pwd", "privatekey", "private_key", "private-key", "pin",
    "secret", "secrets", "signingkey", "signing_key", "signing-key", "signature", "sshkey", "ssh_key", "ssh-key",
    "sessid", "sessionid", "ssn", "token", "apikey", "api_key", "api-key", "apikeys", "api_keys", "api-keys",
    "accesskey", "access_key", "access-key", "auth", "authorization", "credential", "credentials", "cookie",
    "cookies", "cvv", "cvc", "encryptionkey", "encryption_key", "encryption-key", "jwt", "otp",
)  # fmt: skip
#: Suffix words after a secret key word (``[_.-]?(?i:key|value|...)``).
_SECRET_SUFFIXES = ("key", "value", "hash", "str", "string", "b64", "base64", "enc", "encoded", "raw", "plain",
                    "text", "header", "param", "cookie")  # fmt: skip
#: Key words per keyed detector (a key ENDS with one: "X-Proxy-Authorization", "db_password").
KEYED: dict[str, tuple[str, ...]] = {
    "secret": _SECRET_WORDS,
    "authorization": ("authorization",),
    "cookie": ("cookie",),
}
#: "#" stands for one digit (the secret detector's ``[0-9]{1,2}`` tail). A suffix that is a key word itself
#: ("cookie") needs no tail: the key then ends in that key word.
TAILS = ("#", "##", *(j + s for s in _SECRET_SUFFIXES if s not in _SECRET_WORDS for j in ("", "_", ".", "-")))
#: Kinds whose needles are fixed in the C scan ('@', '+' and a digit, "(ddd)", a chain of 10+ digits).
FIXED = frozenset({"email", "url_password", "phone", "card"})
COVERED = frozenset(TOKENS) | frozenset(WORDS_ANY_CASE) | frozenset(KEYED) | FIXED

#: Digest of the built-in detectors (kind and pattern) the tables above were read from; see patterns_digest().
REVIEWED = "3441e12a1123445a"


def patterns_digest(detectors: Iterable[object] = BUILTIN) -> str:
    """16 hex digits over every built-in detector's kind and pattern, in order."""
    h = hashlib.sha256()
    for d in detectors:
        h.update(f"{getattr(d, 'kind', '')}\0{getattr(d, 'pattern', '')}\0".encode())
    return h.hexdigest()[:16]


Needle = tuple[bytes, bool]  # (text, any case); in a key tail, b"\x01" stands for one digit


def needle_tables() -> tuple[list[Needle], list[Needle], list[Needle]]:
    """The tables as the C scan takes them: (tokens, key words, key tails), sorted, without duplicates."""
    tokens = {(t.encode(), False) for ts in TOKENS.values() for t in ts}
    tokens |= {(w.encode(), True) for ws in WORDS_ANY_CASE.values() for w in ws}
    keywords = {(w.encode(), True) for ws in KEYED.values() for w in ws}
    tails = {(t.replace("#", "\x01").encode(), True) for t in TAILS}
    return sorted(tokens), sorted(keywords), sorted(tails)


def load(tokens: list[Needle], keywords: list[Needle], tails: list[Needle]) -> Callable[[str], bool] | None:
    """Give the C scan these tables (process-wide) and return its ``clean`` function; None without the module."""
    if _precheck is None:
        return None
    _precheck.configure(tokens, keywords, tails)
    check: Callable[[str], bool] = _precheck.clean
    return check


#: ``clean(text) -> bool``: True only when no built-in detector can match ``text``; None without the compiled
#: module, or when the detectors changed since the tables were read (see REVIEWED).
CLEAN = load(*needle_tables()) if patterns_digest() == REVIEWED else None


def clean_for(kinds: Iterable[str]) -> Callable[[str], bool] | None:
    """The pre-check for a redactor running the built-in detectors ``kinds`` only (no user patterns), or None
    when some kind has no needles here (``ip``). A subset of the covered kinds can only match less, so one
    table serves them all. Example: ``clean_for(Redactor().kinds)("all clean here")  # True``"""
    return CLEAN if CLEAN is not None and COVERED.issuperset(kinds) else None
