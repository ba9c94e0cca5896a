"""Part 2 helpers: the reasoning-intensity score, Spearman's rank correlation, document selection."""

from __future__ import annotations

import pytest

from tpt.reproduce.trajectories import (
    ranks,
    reasoning_intensity,
    sample_corpus_dir,
    select_documents,
    spearman,
)


def test_intensity_counts_markers_and_symbols_per_100_words() -> None:
    assert reasoning_intensity("The cat sat on the mat.") == 0.0
    # 5 words; markers: "therefore"; symbols: "=" -> 2 per 5 words = 40 per 100
    assert reasoning_intensity("therefore x = y holds here") == pytest.approx(40.0)
    assert reasoning_intensity("") == 0.0


def test_ranks_and_spearman() -> None:
    assert ranks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [5, 5, 5]) is None
    # ranks (1,2,3,4) vs (2,1,4,3): d^2 sum = 4 -> 1 - 6*4/(4*15) = 0.6
    assert spearman([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)


def test_selection_is_per_domain_and_seeded() -> None:
    docs = select_documents(sample_corpus_dir(), per_domain=2)
    assert sorted({d["domain"] for d in docs}) == ["code", "encyclopedic", "math"]
    assert len(docs) == 6 and docs == select_documents(sample_corpus_dir(), per_domain=2)
    assert all("reasoning_intensity" in d for d in docs)
    math_mean = sum(d["reasoning_intensity"] for d in docs if d["domain"] == "math") / 2
    wiki_mean = sum(d["reasoning_intensity"] for d in docs if d["domain"] == "encyclopedic") / 2
    assert math_mean > wiki_mean
