"""Word and n-gram hashing: normalization, per-text boundaries, and chunking that changes nothing."""

import numpy as np

from tpt.quality import ngrams
from tpt.quality.ngrams import ngram_hashes, word_hashes


def test_words_ignore_case_and_ascii_punctuation_and_keep_text_boundaries():
    w = word_hashes(["Hello, world!", "", "hello   WORLD", "héllo"])
    assert w.counts.tolist() == [2, 0, 2, 1]
    np.testing.assert_array_equal(w.of(0), w.of(2))
    assert w.of(3)[0] != w.of(0)[0]  # non-ASCII letters are part of the word


def test_hashes_do_not_depend_on_position_or_batch():
    alone = word_hashes(["the cat sat"]).values
    later = word_hashes(["some other text first", "the cat sat"]).of(1)
    np.testing.assert_array_equal(alone, later)
    assert len(set(alone.tolist())) == 3


def test_ngrams_never_span_two_texts():
    w = word_hashes(["a b c", "d e", "f g h i"])
    g = ngram_hashes(w, 3)
    assert g.counts.tolist() == [1, 0, 2]
    np.testing.assert_array_equal(g.of(0), ngram_hashes(word_hashes(["a b c"]), 3).values)


def test_chunked_hashing_equals_unchunked(monkeypatch):
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "x", "y"]
    texts = [" ".join(rng.choice(words, rng.integers(0, 40))) for _ in range(200)]
    whole = word_hashes(texts)
    monkeypatch.setattr(ngrams, "_CHUNK_BYTES", 97)
    chunked = word_hashes(texts)
    np.testing.assert_array_equal(whole.offsets, chunked.offsets)
    np.testing.assert_array_equal(whole.values, chunked.values)
