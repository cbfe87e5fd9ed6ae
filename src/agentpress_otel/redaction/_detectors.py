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
    "cookie", "authorization", "xapikey", "signature", "clientsecret", "signingkey", "encryptionkey", "sshkey",
)  # fmt: skip
_SENSITIVE_EXACT = frozenset(
    {"pwd", "pass", "auth", "token", "jwt", "sid", "otp", "pin", "cvv", "cvc", "ssn", "sessionkey"}
)
# Short words that hold a secret when they end a compound key ("DB_PASS", "smtpPass", "user_pin"),
# checked on the words of the raw key: normalised, "bypass" or "spin" would end in them too.
_SENSITIVE_LAST_WORDS = frozenset({"pass", "pwd", "pin", "otp", "ssn", "cvv", "cvc", "jwt", "auth"})
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
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
    if n.endswith("token") or any(p in n for p in _SENSITIVE_PARTS):
        return True
    # Session cookies ("sessionid", "PHPSESSID"), but not OTel's "session.id": only the unseparated form.
    low = key.lower()
    if low.endswith(("sessionid", "sessid")):
        return True
    words = _WORDS.findall(key)
    return len(words) > 1 and words[-1].lower() in _SENSITIVE_LAST_WORDS


# ---------------------------------------------------------------------------------------------------
# validators

_HAS_DIGIT_OR_PUNCT = re.compile(r"[0-9._~+/=-]")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2(?:22[1-9]|2[3-9]|[3-6]|7[01]|720)|3[47]|3[0689]|6(?:011|5|4[4-9]|2)|35)")


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


def _card(full: str, v: str, _k: str | None, _s: str | None) -> str | None:
    # The pattern already demands an issuer prefix, a valid length and standard grouping, and no
    # '.' or digit right before (floats, longer numbers). It may take a trailing ".<digit>": then
    # the number is the integer part of a decimal ("1234567890123456.5"), not a card.
    if not full.endswith(v):
        return None
    if " " in v and "-" in v:
        return None  # mixed separators: a table of numbers, not one card
    digits = v.replace(" ", "").replace("-", "")
    if not 14 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits) or not luhn_ok(digits):
        return None
    return "card"


def _phone(full: str, _v: str, _k: str | None, _s: str | None) -> str | None:
    n = sum(c.isdigit() for c in full)
    return "phone" if 8 <= n <= 15 else None


def _plausible_token(v: str) -> bool:
    """A credential, not a word: 8+ characters with a digit or token punctuation, or 20+ characters."""
    return len(v) >= 8 and (len(v) >= 20 or _HAS_DIGIT_OR_PUNCT.search(v) is not None)


def _bearer(full: str, v: str, _k: str | None, _s: str | None) -> str | None:
    # The pattern may take one character past the token: when it does, the "token" was followed by
    # "=<more>", i.e. it is a key=value pair ("token_type=Bearer expires_in=3600"), not a credential.
    if not full.endswith(v) or v.startswith("[REDACTED") or not _plausible_token(v.rstrip("=")):
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
    if s == "basic":
        return "basic_auth"
    if s in ("", "bearer", "token") and not _plausible_token(v):
        return None  # "authorization: granted", a bare "Authorization: Bearer", "Bearer expired"
    if s == "bearer":
        return "bearer"
    return "authorization"


# Values that say something about a secret (state, a placeholder) instead of holding one; any case.
_PLACEHOLDERS = frozenset({
    "none", "null", "nil", "true", "false", "yes", "no", "on", "off", "ok", "''", '""', "undefined", "n/a",
    "redacted", "hidden", "masked", "required", "optional", "enabled", "disabled", "set", "unset", "missing",
    "empty", "invalid", "valid", "expired", "granted", "denied", "changeme",
})  # fmt: skip


def _kv(_full: str, v: str, k: str | None, _s: str | None) -> str | None:
    if not v or v.startswith("[REDACTED") or k is None or not is_sensitive_key(k):
        return None
    # Placeholders, masks ("***", "sk-...abcd") and templating are not secrets.
    if v.lower() in _PLACEHOLDERS or not v.strip("*") or "..." in v or "…" in v or "***" in v:
        return None
    if v.startswith(("${", "{{", "<", "%(")):
        return None
    # "token: 1234", "auth=42": a count or a small id under an ambiguous word; a PIN or password keeps its tag.
    if v.isdigit() and len(v) <= 6:
        n = normalize_key(k)
        if n.endswith(("token", "auth", "sid")) or (n == "pass" and len(v) <= 3):  # "pass=1 fail=0"
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

# Issuer prefixes with their lengths (Visa 16/19, Mastercard 51-55 and 2221-2720, Amex 15, Diners
# 14/16, JCB/Discover/UnionPay 16-19), plain or in the standard groups (4-4-4-4[-3], Amex 4-6-5,
# Diners 4-6-4). Requiring them in the pattern keeps ns timestamps, durations and most long ids
# from ever reaching the (Python) validator: that was the slow path on real JSON logs.
_MC2 = r"2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)"
_P16 = r"(?:4[0-9]{3}|5[1-5][0-9]{2}|" + _MC2 + r"|35[0-9]{2}|6011|65[0-9]{2}|64[4-9][0-9]|62[0-9]{2}|3[0689][0-9]{2})"
_CARD_NUMBER = (
    r"4[0-9]{15}(?:[0-9]{3})?|5[1-5][0-9]{14}|" + _MC2 + r"[0-9]{12}|3[47][0-9]{13}"
    r"|3(?:0[0-5]|[689][0-9])[0-9]{11}(?:[0-9]{2})?|(?:35[0-9]{2}|6011|65[0-9]{2}|64[4-9][0-9]|62[0-9]{2})[0-9]{12,15}"
    r"|" + _P16 + r"(?:[ -][0-9]{4}){3}(?:[ -][0-9]{3})?"
    r"|3[47][0-9]{2}[ -][0-9]{6}[ -][0-9]{5}|3(?:0[0-5]|[689][0-9])[0-9][ -][0-9]{6}[ -][0-9]{4}"
)

BUILTIN: tuple[Detector, ...] = (
    Detector(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,]|\\[nr]|-[A-Za-z0-9])*"
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
    ),
    Detector("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{8,}"),
    Detector(
        "url_password",
        # The user may be empty: "redis://:password@cache:6379/0".
        r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"<>]*:(?P<v>[^\s@/'\"<>]+)@",
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
    # OpenRouter: "sk-or-v1-" + 64 hex (the openai_key pattern stops at the second '-').
    Detector("openrouter_key", _B + r"(?P<v>sk-or-v1-[0-9a-fA-F]{20,})"),
    Detector("openai_key", _B + r"(?P<v>sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{32,}))"),
    Detector("stripe_key", _B + r"(?P<v>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})"),
    Detector("google_api_key", _B + r"(?P<v>AIza[0-9A-Za-z_-]{35})"),
    Detector("aws_access_key", _B + r"(?P<v>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b"),
    Detector("github_token", _B + r"(?P<v>gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    Detector("gitlab_token", _B + r"(?P<v>glpat-[A-Za-z0-9_-]{20,})"),
    Detector("huggingface_token", _B + r"(?P<v>hf_[A-Za-z0-9]{30,})"),
    Detector("slack_token", _B + r"(?P<v>xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})"),
    # The signature is optional: a JWT cut by a length limit still carries its claims.
    Detector("jwt", _B + r"(?P<v>eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*)?)"),
    # RFC 6750 b64token: '=' only as trailing padding. One more alphanumeric is taken when present so
    # the validator can reject "Bearer expires_in=3600" (see _bearer).
    Detector("bearer", r"\b(?i:bearer)\s+(?P<v>[A-Za-z0-9._~+/-]{8,}=*)[A-Za-z0-9]?", _bearer),
    Detector("basic_auth", r"\b(?i:basic)\s+(?P<v>[A-Za-z0-9+/]{6,}={0,2})", _basic),
    Detector(
        "secret",
        # The same words as the key rules (is_sensitive_key), which the validator applies to the key.
        # Grouped by first letter: the backtracking fallback engine tries the words at every position.
        r"(?P<k>[A-Za-z0-9_.-]*(?i:p(?:ass(?:words?|wd|phrase)?|wd|rivate[_-]?key|in)"
        r"|s(?:ecrets?|ign(?:ing[_-]?key|ature)|sh[_-]?key|ess(?:ion)?id|sn)|token"
        r"|a(?:pi[_-]?keys?|ccess[_-]?key|uth(?:orization)?)|c(?:redentials?|ookies?|v[vc])"
        r"|encryption[_-]?key|jwt|otp)"
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
    Detector(
        "card",
        # Not after '.' or a word character (floats, longer numbers, ids like "ord4111..."); the
        # optional ".<digit>" after lets the validator reject a decimal's integer part.
        r"(?:^|[^.0-9A-Za-z_])(?P<v>" + _CARD_NUMBER + r")\b(?:\.[0-9])?",
        _card,
        optional=True,
    ),
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

_SECRET_GATES = (
    "pass", "pwd", "secret", "token", "key", "credential", "auth", "signature", "cookie", "sessid", "sessionid",
    "jwt", "otp", "pin", "cvv", "cvc", "ssn",
)  # fmt: skip

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
    "openrouter_key": ("sk-or-",),
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
    "secret": _SECRET_GATES,
    "email": ("@",),
    "card": ("0-9",),
    "phone": ("0-9",),
    "ip": ("0-9",),
}
