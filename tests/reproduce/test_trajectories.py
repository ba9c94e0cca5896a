"""Part 2 helpers: the reasoning-intensity score, Spearman's rank correlation, document selection."""

from __future__ import annotations

import pytest

from tpt.reproduce.trajectories import (
    reasoning_intensity,
    sample_corpus_dir,
    select_documents,
)


def test_intensity_counts_reasoning_markers_per_100_words_and_not_code_punctuation() -> None:
    assert reasoning_intensity("The cat sat on the mat.") == 0.0
    # 5 words; markers: "therefore" -> 1 per 5 words = 20 per 100; "=" is not counted
    assert reasoning_intensity("therefore x = y holds here") == pytest.approx(20.0)
    assert reasoning_intensity("x = a + b * c | d; y = x ** 2") == 0.0  # code is not mathematics
    assert reasoning_intensity("") == 0.0


def test_selection_is_per_domain_and_seeded() -> None:
    docs = select_documents(sample_corpus_dir(), per_domain=2)
    assert sorted({d["domain"] for d in docs}) == ["code", "encyclopedic", "math"]
    assert len(docs) == 6 and docs == select_documents(sample_corpus_dir(), per_domain=2)
    assert all("reasoning_intensity" in d for d in docs)
    math_mean = sum(d["reasoning_intensity"] for d in docs if d["domain"] == "math") / 2
    wiki_mean = sum(d["reasoning_intensity"] for d in docs if d["domain"] == "encyclopedic") / 2
    assert math_mean > wiki_mean
