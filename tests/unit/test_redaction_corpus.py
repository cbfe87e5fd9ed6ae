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
