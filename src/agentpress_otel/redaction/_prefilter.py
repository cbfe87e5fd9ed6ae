"""A pre-check that proves "no built-in detector can match here" for most short strings, without RE2.

Why: a call into RE2 costs about 1 µs before it scans a byte (the pybind11 crossing and match setup),
so a 50-byte log message paid 1.7-2.8 µs although almost none holds a secret. Every built-in detector
needs an *anchor* that ordinary log text rarely has: a key word right before ``:``/``=``, an ``@``, a
literal token prefix (``sk-``, ``ghp_``, ``AKIA``, ``eyJ``...), the words bearer/basic, or a run of
digits long enough for a card or a phone number. We look only for those anchors with the stdlib ``re``
engine, which skips at C speed over characters that cannot start an alternative (its "charset prefix"
optimisation; it applies only when every alternative starts with a literal character).

The trick that makes the ``key = value`` anchor cheap: the key word comes *before* the separator at a
variable distance, so we scan the string reversed, where every anchor starts with a rare character
(``:``, ``=``, ``@``, ``-``, ``_``, ``.``, ``+``, ``A``, ``I``, ``T``, ``b``, ``B``) and the key word
follows the separator.

The check is conservative: when it says "clean", the full RE2 scan cannot find a match (each pattern
below is a superset of a built-in detector's; ``tests/unit/test_redaction_prefilter.py`` checks every
detector's planted examples and the corpus). It is used only for ASCII text of at most
:data:`MAX_CHARS` characters, only when every detector of the redactor is a built-in one listed in
:data:`COVERED`, and not with the ``ip`` detector (dotted numbers are everywhere in logs).
"""

from __future__ import annotations

import re

#: Longer strings go straight to RE2: its fixed cost is then small next to its scan speed.
MAX_CHARS = 256

#: The built-in detector kinds this pre-check covers. A detector added to ``_detectors.BUILTIN`` must be
#: added here (with its anchor below) or the pre-check switches itself off (see ``Redactor``).
COVERED = frozenset({
    "private_key", "slack_webhook", "url_password", "authorization", "cookie", "anthropic_key", "openrouter_key",
    "openai_key", "stripe_key", "google_api_key", "aws_access_key", "github_token", "gitlab_token",
    "huggingface_token", "slack_token", "jwt", "bearer", "basic_auth", "secret", "email", "card", "phone",
})  # fmt: skip

# The key words of the ``secret`` detector (and ``authorization``/``cookie``, which are among them),
# spelled out, and the suffixes it allows after them.
_KEY_WORDS = (
    "pass", "password", "passwords", "passwd", "passphrase", "pwd", "privatekey", "private_key", "pin", "secret",
    "secrets", "signingkey", "signing_key", "signature", "sshkey", "ssh_key", "sessid", "sessionid", "ssn", "token",
    "apikey", "api_key", "apikeys", "api_keys", "accesskey", "access_key", "auth", "authorization", "credential",
    "credentials", "cookie", "cookies", "cvv", "cvc", "encryptionkey", "encryption_key", "jwt", "otp",
)  # fmt: skip
_SUFFIXES = (
    "key", "value", "hash", "str", "string", "b64", "base64", "enc", "encoded", "raw", "plain", "text", "header",
    "param", "cookie",
)  # fmt: skip

# One translation folds what the detectors treat alike: letters to lower case (the key words and
# bearer/basic match in any case), digits to "0", the separators ":" and "=" to "=", and "-" to "_".
# Each search below then starts at one literal character, which the stdlib engine finds with memchr
# instead of testing every character against a set.
_FOLD_FROM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789:=-"
_FOLD_TO = "abcdefghijklmnopqrstuvwxyz000000000___"
_FOLD = bytes.maketrans(_FOLD_FROM.encode(), _FOLD_TO.encode())
_FOLD_STR = str.maketrans(_FOLD_FROM, _FOLD_TO)


def _trie(words: dict[str, set[str]]) -> str:
    """An alternation of ``word + tail`` for each word and each of its tail regexes, factored by first
    character, so the engine tests each character once and rejects most positions at once."""
    done: set[str] = set()
    groups: dict[str, dict[str, set[str]]] = {}
    for w, tails in words.items():
        if w:
            groups.setdefault(w[0], {})[w[1:]] = tails
        else:
            done |= tails
    alts = [re.escape(c) + _trie(rest) for c, rest in sorted(groups.items())]
    # Words complete here: their tails come after the longer words ("" last: it always matches).
    alts += sorted(done, key=lambda t: (t == "", t))
    if len(alts) == 1:
        return alts[0]
    return "(?:" + "|".join(alts) + ")"


def _words(*groups: tuple[tuple[str, ...], str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for words, tail in groups:
        for w in words:
            out.setdefault(w, set()).add(tail)
    return out


def _fold_rev(w: str) -> str:
    return w.translate(_FOLD_STR)[::-1]


# Searched in the folded text *reversed* (what comes before a separator comes after it), from each
# sentinel "_" (an original ":", "=", "-" or "_"), one factored alternation of:
# * a key word before ":"/"=" (secret, authorization, cookie), directly or after the detector's
#   suffix ("_value", ".hash", ...) or 1-2 digits; with spaces or an (escaped) quote in between, via
#   the slower general form. A "-"/"_" sentinel tries these too: a harmless superset;
# * a token prefix ending in "-" or "_": sk-, sk_, rk_, whsec_, gh?_, github_pat_, glpat-, hf_, xox?-,
#   xapp-, and the dashes of "-----BEGIN ... PRIVATE KEY";
# * the "://" of a Slack webhook URL.
_KEYS = tuple(_fold_rev(w) for w in _KEY_WORDS)
_KW = _trie(_words((_KEYS, "")))
_SUFFIX = _trie(_words((tuple(_fold_rev(w) for w in _SUFFIXES), "")))
_GENERAL = r"(?:" + _SUFFIX + r"[_.]?|0{1,2})?" + _KW
_TOKENS = ("ks", "kr", "ceshw", "tap_buhtig", "taplg", "fh", "ppax", "____")
_SENTINEL = re.compile(
    "_(?:"
    + _trie(_words(
        (_KEYS, ""),
        (("0",), "0?" + _KW),
        (_TOKENS + tuple(c + "hg" for c in "pousr") + tuple(c + "xox" for c in "abposre"), ""),
    ))
    + "|" + _SUFFIX + "[_.]?" + _KW
    # spaces or an (escaped) quote between key and separator: rarer, one general form
    + r"|(?:\s{1,3}(?:[\"']\\?)?|[\"']\\?)" + _GENERAL
    + "|(?<=skooh//_))"  # "://" after hooks.slack.com (reversed: before it)
)


# The case-sensitive literal prefixes of AWS access key ids and Google API keys.
_UPPER_A = re.compile(r"A(?:KIA|SIA|BIA|CCA|3T|Iza)")


def maybe_secret(text: str) -> bool:
    """False only when no built-in detector (``ip`` aside) can match ``text`` (ASCII).

    Example: ``maybe_secret("agent run finished in 2.3 s") -> False``;
    ``maybe_secret("api_key=abc") -> True``.
    """
    if "@" in text or "+" in text or "eyJ" in text:  # email/url password, +<country code>, JWT
        return True
    if "A" in text and _UPPER_A.search(text) is not None:
        return True
    f = text.encode().translate(_FOLD).decode()
    if "bearer" in f or "basic" in f:
        return True
    # Cards (14-19 digits, or 4-4-4-4 / 4-6-5 / 4-6-4 groups) and phone numbers without "+"
    # (ddd-ddd-dddd, (ddd) ddd-dddd) all hold three digits, at most one separator, four digits.
    if "0000" in f and ("0000000" in f or "000_0000" in f or "000 0000" in f or "000.0000" in f):
        return True
    return "_" in f and _SENTINEL.search(f[::-1]) is not None
