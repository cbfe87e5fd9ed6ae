"""Experiment (issue 19): a sound stdlib pre-check in front of RE2 for short clean strings. It did not pay.

The same idea written in C did: ``agentpress_otel.redaction._precheck`` (see ``_needles.py``), which
Redactor.redact now uses; this script times it next to the stdlib version when it is built.

Not run by ``benchmarks/run.py`` (not a ``bench_*`` script): it reproduces the measurement behind the
"Pre-checks that did not pay" note in docs/logging.md. The pre-check maps the text with one ``bytes.translate``
into a small alphabet (lower case, digits to ``0``, ``:``/``=`` to one byte, quotes and whitespace to a space,
the letters that start or end a secret's prefix to one anchor byte) and runs literal-led stdlib ``re`` searches
for the detectors' needles: token prefixes, a key word before ``:``/``=``, digit runs, "@"/"+". It is checked
here against RE2 on the short-line corpus and the labelled corpus (it must never call clean what RE2 matches),
then timed against RE2's one-call check in interleaved rounds.

Run: .venv/bin/python benchmarks/experiment_redaction_precheck.py
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from agentpress_otel.redaction import Redactor
from agentpress_otel.redaction._needles import TOKENS
from bench_redaction import LINES, short_lines

#: Strings longer than this go straight to RE2: the gate's cost grows with length, RE2's fixed cost does not.
GATE_MAX = 512

_Z = 0x00  # the anchor byte of the token needles
_Q = 0x3D  # ':' and '=' (the separator of key=value needles), gated by its own presence
_AT = 0x40  # '@' and '+' (email, URL userinfo, international phone numbers): "present" means "maybe"
_ANCHORS = frozenset("bBgkwx_AJ(.")  # letters/punctuation that start or end a token needle
_SPACE_LIKE = frozenset(" \t\n\v\f\r\"'\\")  # whitespace, and the quotes/backslash allowed between key and ':'


def _map_char(c: str) -> int:
    if c in _ANCHORS:
        return _Z
    if c in ":=":
        return _Q
    if c in "@+":
        return _AT
    if c in _SPACE_LIKE:
        return 0x20
    if "0" <= c <= "9":
        return 0x30
    if c == "\x00":
        return 0x01  # keep a NUL in the text from reading as an anchor
    return ord(c.lower())


#: The translate table (bytes > 127 never reach it: only ASCII text is gated).
TABLE = bytes(_map_char(chr(i)) if i < 128 else i for i in range(256))

# ---------------------------------------------------------------------------------------------------
# needles, in the detectors' own alphabet (see _detectors.BUILTIN); CS = case-sensitive, CI = any case

#: The compiled pre-check's token prefixes (_needles.TOKENS), in this gate's alphabet: the webhook URL is one of the
#: ":" needles below, the JWT is found by its claims part, and "(ddd)" is a token here.
_TOKENS: dict[str, tuple[str, ...]] = {
    **{kind: prefixes for kind, prefixes in TOKENS.items() if kind != "slack_webhook"},
    "jwt": (".eyJ",),  # header "eyJ...", then "." and the claims "eyJ..."
    "phone": ("(000)",),  # "(555) 123-4567"; the other forms are the "+" and digit-run checks
}
#: Any case, then one whitespace character (RE2's ``\s+`` after the scheme word).
_WORDS_WS: dict[str, tuple[str, ...]] = {"bearer": ("bearer ",), "basic_auth": ("basic ",)}
#: Needles with ":" or "=": the secret key words (the ``k`` group of the "secret" detector: a key word, then an
#: optional suffix word or one or two digits), the header names, and the Slack webhook URL (case-sensitive).
KEY_WORDS = (
    "pass", "password", "passwords", "passwd", "passphrase", "pwd", "privatekey", "private_key", "private-key",
    "pin", "secret", "secrets", "signingkey", "signing_key", "signing-key", "signature", "sshkey", "ssh_key",
    "ssh-key", "sessid", "sessionid", "ssn", "token", "apikey", "api_key", "api-key", "apikeys", "api_keys",
    "api-keys", "accesskey", "access_key", "access-key", "auth", "authorization", "credential", "credentials",
    "cookie", "cookies", "cvv", "cvc", "encryptionkey", "encryption_key", "encryption-key", "jwt", "otp",
)  # fmt: skip
KEY_SUFFIXES = ("key", "value", "hash", "str", "string", "b64", "base64", "enc", "encoded", "raw", "plain", "text",
                "header", "param", "cookie")  # fmt: skip
_KEYED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "secret": (KEY_WORDS, KEY_SUFFIXES),
    "authorization": (("authorization",), ()),
    "cookie": (("cookie",), ()),
}
_SLACK_HOOK = "https://hooks.slack.com/"
#: Kinds answered by the '@'/'+' presence check alone (url_password needs "://" and "@").
_AT_KINDS = frozenset({"email", "url_password"})
#: Kinds with a digit-run pattern (card numbers; phone numbers "555-123-4567" / "555.123.4567").
_DIGIT_KINDS = frozenset({"card", "phone"})
#: Every kind the gate has needles for; a redactor running any other detector is not gated.
COVERED = frozenset(_TOKENS) | frozenset(_WORDS_WS) | frozenset(_KEYED) | _AT_KINDS | _DIGIT_KINDS | {"slack_webhook"}

Cls = frozenset[int]


def mapped(text: str, *, any_case: bool = False) -> tuple[Cls, ...]:
    """``text`` in the gate's alphabet: per character, the set of bytes it can become (two when ``any_case``
    and the cases map differently). Example: ``mapped("sk-") == ({0x73}, {0x00}, {0x2d})``."""
    out = []
    for c in text:
        variants = {c, c.lower(), c.upper()} if any_case else {c}
        out.append(frozenset(TABLE[ord(v)] for v in variants))
    return tuple(out)


def key_tails(words: Iterable[str], suffixes: Iterable[str]) -> set[str]:
    """The last three characters of every key a keyed detector accepts (key word, then nothing, a suffix word
    with an optional ``_.-`` joiner, or one or two digits). Every word and suffix has 3+ characters."""
    tails: set[str] = set()
    for w in words:
        tails.update((w[-3:], w[-2:] + "0", w[-1:] + "00"))
    tails.update(s[-3:] for s in suffixes)
    return tails


def _cls_rx(c: Cls) -> str:
    body = "".join(re.escape(chr(b)) if b else r"\x00" for b in sorted(c))
    return body if len(c) == 1 else f"[{body}]"


def _seq_rx(seq: Iterable[Cls]) -> str:
    return "".join(_cls_rx(c) for c in seq)


def _trie_rx(seqs: Iterable[tuple[Cls, ...]]) -> str:
    """One alternation for many class sequences of equal length, shared prefixes factored out (sre tries the
    branches of an alternation one after another; a trie keeps that list short)."""
    seqs = list(seqs)
    if any(not s for s in seqs):
        return ""  # a needle ends here: the longer ones sharing its start add nothing
    groups: dict[Cls, list[tuple[Cls, ...]]] = {}
    for s in seqs:
        groups.setdefault(s[0], []).append(s[1:])
    alts = [_cls_rx(c) + _trie_rx(rest) for c, rest in sorted(groups.items(), key=lambda kv: sorted(kv[0]))]
    if not alts:
        return ""
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _anchored(needles: Iterable[tuple[Cls, ...]]) -> str:
    """What must follow the anchor byte: a trie of the needles' parts after their first anchor (the part before
    it, if any, checked by a look-behind once the rest matched), behind a one-class guard on the next byte, so
    the common stop (an anchor letter inside an ordinary word) costs one class test."""
    plain: list[tuple[Cls, ...]] = []
    behind: list[str] = []
    for nd in needles:
        i = next(i for i, c in enumerate(nd) if c == {_Z})
        before, after = nd[:i], nd[i + 1 :]
        if not after:
            behind.append(f"(?<={_seq_rx(before)}\\x00)")
        elif not before:
            plain.append(after)
        else:
            behind.append(f"{_seq_rx(after)}(?<={_seq_rx(before)}\\x00{_seq_rx(after)})")
    first = frozenset().union(*(a[0] for a in plain)) if plain else frozenset()
    alts = [f"(?={_cls_rx(first)}){_trie_rx(plain)}"] if plain else []
    return "|".join(alts + sorted(set(behind)))


def _token_pattern(kinds: frozenset[str]) -> bytes | None:
    needles = [mapped(t) for k, ts in _TOKENS.items() if k in kinds for t in ts]
    needles += [mapped(w, any_case=True) for k, ws in _WORDS_WS.items() if k in kinds for w in ws]
    if not needles:
        return None
    return ("\\x00(?:" + _anchored(needles) + ")").encode("latin-1")


def _key_pattern(kinds: frozenset[str]) -> bytes | None:
    branches: list[str] = []
    if "slack_webhook" in kinds:
        branches.append(_seq_rx(mapped(_SLACK_HOOK.partition(":")[2])))  # "//hooks.slack.com/" after "https:"
    tails = {t for k, (ws, sfx) in _KEYED.items() if k in kinds for t in key_tails(ws, sfx)}
    if tails:
        # key, then up to five quote/space characters (RE2: an optional \" or ', then \s{0,3}), then ':' or '='.
        e = _trie_rx(mapped(t, any_case=True) for t in tails)
        spaced = "|".join(f"(?<={e}{' ' * n}=)" for n in range(1, 6))
        branches.append(f"(?<={e}=)|(?<= =)(?:{spaced})")
    return ("=(?:" + "|".join(branches) + ")").encode("latin-1") if branches else None


# Card numbers: 14+ digits, or the grouped forms 4-4-4-4 / 4-6-x (separators ' ' or '-'); phone numbers
# "ddd[.-]ddd[.-]dddd" (checked at their last group). Quotes and tabs read as spaces: only more "maybe".
_CARD = rb"0{10}|[ \-]0000(?:[ \-]0000|00)"
_PHONE = rb"(?<=000[.\-]000[.\-]0000)"


def gate_for(kinds: Iterable[str]) -> Callable[[str], bool] | None:
    """A function ``clean(text) -> bool`` for a redactor running the built-in detectors ``kinds``: True only when
    no detector can match ``text`` (an ASCII str of at most GATE_MAX characters). None when some kind is not
    covered (user patterns, ``ip``): such redactors are not gated.

    Example: ``gate_for(["email", "jwt"])("all clean here")  # True``
    """
    ks = frozenset(kinds)
    if not ks <= COVERED:
        return None
    tok, key = _token_pattern(ks), _key_pattern(ks)
    digit_parts = ([_CARD] if "card" in ks else []) + ([_PHONE] if "phone" in ks else [])
    at = bool(ks & _AT_KINDS) or "phone" in ks
    table = TABLE
    tok_search = re.compile(tok).search if tok else _never
    key_search = re.compile(key).search if key else _never
    digit_search = re.compile(b"0000(?:" + b"|".join(digit_parts) + b")").search if digit_parts else _never
    at_byte = _AT if at else -1

    def clean(text: str) -> bool:
        t = text.encode().translate(table)
        return (
            at_byte not in t
            and tok_search(t) is None
            and (_Q not in t or key_search(t) is None)
            # a card number has 14+ digits, a phone number without "+" or "(" 10
            and (t.count(0x30) < 10 or digit_search(t) is None)
        )

    return clean


def _never(_data: bytes) -> None:
    return None


def main() -> None:
    r = Redactor(hash_key=b"experiment")
    clean = gate_for(r.kinds)
    assert clean is not None
    lines = short_lines(random.Random(3), 2000)
    corpus = Path(__file__).resolve().parents[1] / "tests" / "data" / "redaction_corpus.jsonl"
    labelled = [str(json.loads(x)["text"]) for x in corpus.read_text().splitlines() if x.strip()]
    checked = [t for t in lines + LINES + labelled if t.isascii() and len(t) <= GATE_MAX]
    unsound = [t for t in checked if clean(t) and r._any_of(t.encode())]
    assert not unsound, unsound[:5]
    maybe = sum(not clean(t) for t in lines) / len(lines)
    check = r._any_of
    fns: dict[str, Callable[[], object]] = {
        "pre-check": lambda: [clean(x) for x in lines],
        "RE2 one-call check": lambda: [check(x.encode()) for x in lines],
        "Redactor.redact": lambda: [r.redact(x) for x in lines],
    }
    compiled = r._clean
    if compiled is not None:
        fns["compiled pre-check (C)"] = lambda: [compiled(x) for x in lines]
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(9):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[k].append((time.perf_counter() - t0) / len(lines) * 1e6)
    print(f"{len(checked)} texts checked: the pre-check never calls clean what RE2 matches; "
          f"it says 'maybe' on {maybe:.1%} of the clean short lines")
    for k, v in samples.items():
        print(f"{k:20s} median {statistics.median(v):.2f} us per line ({min(v):.2f}-{max(v):.2f}) over 9 rounds")
    ratios = [p / c for p, c in zip(samples["pre-check"], samples["RE2 one-call check"], strict=True)]
    print(f"pre-check / RE2 check: median of per-round ratios {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
