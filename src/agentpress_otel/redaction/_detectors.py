"""Built-in secret / PII detectors.

Every pattern is written for RE2 (no look-around, no back-references) and also compiles with the
stdlib ``re`` module, where it stays free of nested unbounded quantifiers, so the fallback engine
cannot backtrack catastrophically either. Counted repeats appear only after a literal prefix:
a counter that can be active on ordinary words (``[a-z]{0,40}``) multiplies RE2's DFA states and
drops it to a fraction of its speed on prose.

Group conventions (renamed per detector when the alternation is built):
``v``/``vq``/``vs``: the secret part to replace (first non-empty one wins; none = whole match);
``k``: a key name that must pass :func:`is_sensitive_key`; ``s``: an auth scheme.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

#: A validator gets (whole match, secret part, key or None, scheme or None) and returns the kind to
#: tag the secret with, or None to leave the match untouched (a near-miss).
Validator = Callable[[str, str, "str | None", "str | None"], "str | None"]


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: str
    validate: Validator | None = None
    #: where scanning resumes after a rejected match: "end" or "value" (start of the secret part),
    #: so a rejected key=value pair still has its value scanned by the other detectors.
    resume: str = "end"
    #: optional detectors can be switched off by name (phone, ip, email, card).
    optional: bool = False


# ---------------------------------------------------------------------------------------------------
# key-name rules (dict keys, attribute names, key=value pairs, URL query parameters)

_NORM = re.compile(r"[^a-z0-9]")
_SENSITIVE_PARTS = (
    "password", "passwd", "passphrase", "secret", "apikey", "privatekey", "accesskey", "credential",
    "cookie", "authorization", "xapikey", "signature", "clientsecret",
)  # fmt: skip
_SENSITIVE_EXACT = frozenset({"pwd", "pass", "auth", "token", "jwt", "sid", "otp", "pin", "cvv", "cvc", "ssn"})
# A sensitive word followed by one of these describes the secret rather than holding it
# ("password_length", "api_key_id", "token_type", "max_tokens" ends in "tokens").
_BENIGN_SUFFIXES = (
    "id", "ids", "count", "type", "method", "name", "length", "len", "expiry", "expires", "expiresat",
    "expiresin", "ttl", "hint", "policy", "enabled", "required", "set", "present", "source", "version",
    "usage", "limit", "kind", "scheme", "format", "provider", "field", "header", "prefix",
)  # fmt: skip
#: extra names treated as sensitive only in URL query strings (?key=..., ?code=...).
URL_QUERY_KEYS = frozenset({"key", "code", "sig", "access", "st", "x-amz-signature", "x-goog-signature"})


def normalize_key(key: str) -> str:
    return _NORM.sub("", key.lower())


def _strip_benign(n: str) -> str | None:
    for suffix in _BENIGN_SUFFIXES:
        if n.endswith(suffix) and len(n) > len(suffix):
            head = n[: -len(suffix)]
            if head.endswith(("token", "password", "secret", "apikey", "key", "auth", "cookie", "credential")):
                return None
    return n


def is_sensitive_key(key: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when a field called ``key`` holds a secret (password, token, api_key, cookie, ...).

    Example: ``is_sensitive_key("X-Api-Key") -> True``, ``is_sensitive_key("max_tokens") -> False``.
    """
    if extra and normalize_key(key) in extra:
        return True
    return _builtin_sensitive(key)


@functools.lru_cache(maxsize=8192)
def _builtin_sensitive(key: str) -> bool:
    # Key names repeat endlessly in logs and attributes: cache the verdict (a few µs uncached).
    n = normalize_key(key)
    if not n:
        return False
    if n in _SENSITIVE_EXACT:
        return True
    if _strip_benign(n) is None:
        return False
    return n.endswith("token") or any(p in n for p in _SENSITIVE_PARTS)


# ---------------------------------------------------------------------------------------------------
# validators

_HAS_DIGIT_OR_PUNCT = re.compile(r"[0-9._~+/=-]")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|2)|35)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(full: str, _v: str, _k: str | None, _s: str | None) -> str | None:
    digits = full.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits) or not luhn_ok(digits):
        return None
    seps = {c for c in full if c in " -"}
    if len(seps) > 1:
        return None
    if seps:
        groups = [len(g) for g in re.split(r"[ -]", full)]
        ok = (groups[:3] == [4, 4, 4] and len(groups) in (4, 5) and all(1 <= g <= 4 for g in groups[3:])) or groups in (
            [4, 6, 5],
            [4, 6, 4],
        )
        if not ok:
            return None
    return "card"


def _phone(full: str, _v: str, _k: str | None, _s: str | None) -> str | None:
    n = sum(c.isdigit() for c in full)
    return "phone" if 8 <= n <= 15 else None


def _bearer(_full: str, v: str, _k: str | None, _s: str | None) -> str | None:
    if len(v) < 8 or v.startswith("[REDACTED") or not _HAS_DIGIT_OR_PUNCT.search(v):
        return None
    return "bearer"


def _basic(_full: str, v: str, _k: str | None, _s: str | None) -> str | None:
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return "basic_auth" if b":" in raw else None


def _not_redacted(kind: str) -> Validator:
    def check(_full: str, v: str, _k: str | None, _s: str | None) -> str | None:
        return None if v.startswith("[REDACTED") else kind

    return check


def _auth_header(_full: str, v: str, _k: str | None, scheme: str | None) -> str | None:
    if v.startswith("[REDACTED"):
        return None
    s = (scheme or "").lower()
    if s == "bearer":
        return "bearer"
    if s == "basic":
        return "basic_auth"
    return "authorization"


def _kv(_full: str, v: str, k: str | None, _s: str | None) -> str | None:
    if not v or v.startswith("[REDACTED") or k is None or not is_sensitive_key(k):
        return None
    # Placeholders and templating are not secrets.
    if v in {"***", "*****", "None", "null", "none", "true", "false", "''", '""'} or v.startswith(("${", "{{", "<")):
        return None
    return "secret"


# ---------------------------------------------------------------------------------------------------
# the detectors, in priority order (earlier wins when two start at the same offset)

# Start of a token: a word boundary, or an escape glued to it (URL-encoded "%3D", JSON "\\n"), which
# is consumed but kept (only the ``v`` group is replaced).
_B = r"(?:\b|%[0-9A-Fa-f]{2}|\\[nrt])"
_Q = r"""(?:\\?["'])?"""  # optional (possibly JSON-escaped) closing quote of a key
_SEP = r"\s{0,3}[:=]\s{0,3}"
_VALUE = r"""(?:\\?"(?P<vq>[^"\\\r\n]+)\\?"|'(?P<vs>[^'\r\n]+)'|(?P<v>[^\s"'&,;}\]<>)\\]+))"""

BUILTIN: tuple[Detector, ...] = (
    Detector(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,]|\\[nr]|-[A-Za-z0-9])*"
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
    ),
    Detector("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{8,}"),
    Detector(
        "url_password",
        r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"<>]+:(?P<v>[^\s@/'\"<>]+)@",
        _not_redacted("url_password"),
    ),
    Detector(
        "authorization",
        r"(?i:\b(?:proxy-)?authorization)" + _Q + _SEP + r"""\\?["']?"""
        r"(?:(?P<s>(?i:bearer|basic|token|digest|negotiate|apikey))\s+)?(?P<v>[^\s\"',;\\]{4,})",
        _auth_header,
    ),
    Detector(
        "cookie", r"(?i:\b(?:set-)?cookie)" + _Q + _SEP + r"""\\?["']?(?P<v>[^\r\n"'\\]+)""", _not_redacted("cookie")
    ),
    Detector("anthropic_key", _B + r"(?P<v>sk-ant-[A-Za-z0-9_-]{20,})"),
    Detector("openai_key", _B + r"(?P<v>sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{32,}))"),
    Detector("stripe_key", _B + r"(?P<v>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})"),
    Detector("google_api_key", _B + r"(?P<v>AIza[0-9A-Za-z_-]{35})"),
    Detector("aws_access_key", _B + r"(?P<v>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b"),
    Detector("github_token", _B + r"(?P<v>gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    Detector("gitlab_token", _B + r"(?P<v>glpat-[A-Za-z0-9_-]{20,})"),
    Detector("huggingface_token", _B + r"(?P<v>hf_[A-Za-z0-9]{30,})"),
    Detector("slack_token", _B + r"(?P<v>xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})"),
    Detector("jwt", _B + r"(?P<v>eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)"),
    Detector("bearer", r"\b(?i:bearer)\s+(?P<v>[A-Za-z0-9._~+/=-]{8,})", _bearer),
    Detector("basic_auth", r"\b(?i:basic)\s+(?P<v>[A-Za-z0-9+/]{6,}={0,2})", _basic),
    Detector(
        "secret",
        r"(?P<k>[A-Za-z0-9_.-]*(?i:passwords?|passwd|pwd|passphrase|secrets?|token|api[_-]?keys?|apikey|"
        r"access[_-]?key|private[_-]?key|credentials?|auth|signature)"
        # Only suffixes that still name the secret itself; "max_tokens", "token_count", "auth_method"
        # fail here in the DFA instead of costing a rejected match each.
        r"(?:[_.-]?(?i:key|value|hash|str|string|b64|base64|enc|encoded|raw|plain|text|header|param|cookie)"
        r"|[0-9]{1,2})?)" + _Q + _SEP + _VALUE,
        _kv,
        resume="value",
    ),
    Detector(
        "email",
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}\b",
        optional=True,
    ),
    Detector("card", r"\b(?:\d[ -]?){12,18}\d\b", _card, optional=True),
    Detector(
        "phone",
        r"(?:\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?\d{2,4}){2,4}\b"
        r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}\b|\b\d{3}[.-]\d{3}[.-]\d{4}\b)",
        _phone,
        optional=True,
    ),
    Detector(
        "ip",
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"
        r"|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b",
        optional=True,
    ),
)

#: kinds switched on by default (ip is off: version strings look like IPv4 and ops need client ips).
DEFAULT_OFF = frozenset({"ip"})

#: Substring gates for the stdlib ``re`` fallback engine (checked against the lower-cased text): a
#: detector whose gates are all absent cannot match and is left out of that scan. "0-9" means
#: "the text has a digit". RE2 needs no gates: its DFA scans all detectors at once.
GATES: dict[str, tuple[str, ...]] = {
    "private_key": ("private key",),
    "slack_webhook": ("hooks.slack.com",),
    "url_password": ("://",),
    "authorization": ("authorization",),
    "cookie": ("cookie",),
    "anthropic_key": ("sk-ant-",),
    "openai_key": ("sk-",),
    "stripe_key": ("_live_", "_test_", "whsec_"),
    "google_api_key": ("aiza",),
    "aws_access_key": ("akia", "asia", "abia", "acca", "a3t"),
    "github_token": ("gh", "github_pat_"),
    "gitlab_token": ("glpat-",),
    "huggingface_token": ("hf_",),
    "slack_token": ("xox", "xapp-"),
    "jwt": ("eyj",),
    "bearer": ("bearer",),
    "basic_auth": ("basic",),
    "secret": ("pass", "pwd", "secret", "token", "key", "credential", "auth", "signature"),
    "email": ("@",),
    "card": ("0-9",),
    "phone": ("0-9",),
    "ip": ("0-9",),
}
