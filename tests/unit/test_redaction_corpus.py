"""Recall and false-positive rate of the default redactor on the labelled corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest

from agentpress_otel.redaction import Redactor

CORPUS = Path(__file__).parents[1] / "data" / "redaction_corpus.jsonl"


def _rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("engine", ["re2", "re"])
def test_corpus_recall_and_false_positive_rate(engine: Literal["re2", "re"]) -> None:
    """On the labelled corpus the redactor reaches 99% recall and at most 1% false positives."""
    r = Redactor(hash_key=b"corpus", engine=engine)
    rows = _rows()
    pos = [x for x in rows if x["kind"]]
    neg = [x for x in rows if not x["kind"]]
    kinds = Counter(str(x["kind"]) for x in pos)
    assert len(kinds) >= 18, kinds  # every detector family is represented
    misses = []
    wrong_kind = []
    for x in pos:
        out = r.redact(str(x["text"]))
        if any(str(s) in out for s in x["secrets"]):  # type: ignore[attr-defined]
            misses.append((x["id"], x["kind"], x["placement"]))
        elif f"[REDACTED:{x['kind']}:" not in out:
            wrong_kind.append((x["id"], x["kind"], out[:120]))
    fps = [(x["id"], x["placement"]) for x in neg if r.redact(str(x["text"])) != x["text"]]
    recall = 1 - len(misses) / len(pos)
    fpr = len(fps) / len(neg)
    print(f"corpus ({engine}): {len(pos)} positives, {len(neg)} negatives, recall={recall:.4f}, fpr={fpr:.4f}")
    assert recall >= 0.99, misses[:20]
    assert fpr <= 0.01, fps[:20]
    assert len(wrong_kind) <= 0.02 * len(pos), wrong_kind[:20]


def test_corpus_is_idempotent() -> None:
    """Redacting already redacted corpus text changes nothing."""
    r = Redactor(hash_key=b"corpus")
    for x in _rows():
        once = r.redact(str(x["text"]))
        assert r.redact(once) == once, x["id"]


def test_one_scan_per_record_finds_every_corpus_secret_among_clean_strings() -> None:
    """``Redactor.all_clean`` (the log worker's one scan over a record's strings, joined) never calls a record
    clean when one of its strings holds a secret the redactor would replace: each positive corpus text, put
    first, in the middle and last among clean log strings, is caught; records of clean texts are clean."""
    r = Redactor(hash_key=b"corpus")
    rows = _rows()
    clean = [str(x["text"]) for x in rows if not x["kind"] and r.redact(str(x["text"])) == x["text"]]
    fillers = ["tool web_search finished in 123 ms", "/api/agent/start", "web_search", "p-1", "t-1"]
    for x in rows:
        text = str(x["text"])
        if not x["kind"] or r.redact(text) == text:
            continue
        for at in (0, 2, 5):
            texts = [*fillers[:at], text, *fillers[at:]]
            assert not r.all_clean(texts), (x["id"], at)
    checked = 0
    for i in range(0, len(clean) - 3, 3):
        texts = clean[i : i + 3]
        if all(t.isascii() for t in texts) and r.all_clean(texts):
            checked += 1
            assert all(r.redact(t) is t for t in texts)
    assert checked > len(clean) // 6, (checked, len(clean))  # clean records mostly take the one-scan path


def test_one_scan_is_skipped_for_user_patterns_anchored_on_the_text() -> None:
    """A user pattern anchored on the start or end of the text (``^ACME-[0-9]+$``) matches a field value on its
    own but not inside the newline-joined record: ``all_clean`` must then not claim the record clean."""
    r = Redactor(hash_key=b"corpus", patterns={"acme_id": r"^ACME-[0-9]{6}$"})
    assert r.redact("ACME-123456").startswith("[REDACTED:acme_id:")
    assert not r.all_clean(["tool finished", "ACME-123456"])
    plain = Redactor(hash_key=b"corpus", patterns={"acme_id": r"ACME-[0-9]{6}"})
    assert not plain.all_clean(["tool finished", "ACME-123456"])
    assert plain.all_clean(["tool finished", "ACME-12"])


def test_batch_scan_marks_every_string_with_a_secret() -> None:
    """``Redactor.candidates`` over a whole batch (all corpus texts in one list, mixed with clean log strings, the
    way the log worker scans a batch of records) marks every string that ``redact`` changes; a card number at
    the very start of a string right after another hit (where the scan resumes) is found too."""
    r = Redactor(hash_key=b"corpus")
    texts: list[str] = []
    for x in _rows():
        texts += [str(x["text"]), "tool web_search finished in 12 ms", "p-1"]
    texts += ["mail bob@example.com", "4111 1111 1111 1111 charged", "ok", "4111111111111111", "x"]
    marked = r.candidates(texts)
    changed = {i for i, t in enumerate(texts) if r.redact(t) != t}
    assert changed and changed <= marked, sorted(changed - marked)[:5]
    assert len(marked) < len(texts) // 2  # clean strings are mostly left alone


def test_one_call_check_agrees_with_the_bounds_program_on_the_corpus() -> None:
    """``redact()``'s fast path asks an RE2 set "does anything match?"; on every corpus text (and each one cut
    into 40-120 character pieces, the short strings it is used for) it answers as the capture-free program
    whose match bounds the scan then uses, so a text it calls clean has no match to redact."""
    r = Redactor(hash_key=b"corpus")
    prog = r._prog
    assert prog.any_of is not None
    texts = [str(x["text"]).encode("utf-8", "surrogatepass") for x in _rows()]
    texts += [t[i : i + n] for t in texts for n in (40, 120) for i in range(0, len(t), n)]
    for t in texts:
        assert bool(prog.any_of(t)) == (prog.bounds.Match(prog.unanchored, t, 0, len(t))[0][0] >= 0), t[:80]
