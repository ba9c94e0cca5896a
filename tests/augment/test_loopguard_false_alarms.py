"""No false alarms: human-written technical text read as if it were thinking never trips the loop guard.

The bundled sample corpus (48 documents: linear algebra, discrete math, Python, Wikipedia) and the 500
bundled MATH-500 solutions repeat symbols legitimately (equations, code, lists); fed through the guard
with its default options, token by token in the embedded teacher's tokenizer and as streamed text, not
one fires, and the highest share of repeated n-grams any window reaches stays clear of the threshold
(the margins docs/loop-guard.md states).
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from tpt.augment.loopguard import LoopGuard, LoopGuardOptions, TextLoopGuard

MARGIN = 0.05
"""The highest window share seen must stay this far under the threshold (measured: docs/loop-guard.md)."""


def _texts() -> dict[str, list[tuple[str, str]]]:
    data = resources.files("tpt") / "data"
    corpus = []
    for path in sorted((data / "sample_corpus").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                corpus.append((record["id"], record["text"]))
    math = [
        (f"math500/{i}", json.loads(line)["solution"])
        for i, line in enumerate((data / "eval" / "math500" / "test.jsonl").read_text("utf-8").splitlines())
    ]
    return {"corpus": corpus, "math500": math}


TEXTS = _texts()


@pytest.fixture(scope="module")
def teacher_tokenizer():
    transformers = pytest.importorskip("transformers")
    from tpt.core.hfmodel import resolve_model_dir

    return transformers.AutoTokenizer.from_pretrained(str(resolve_model_dir(None)))


def test_the_bundled_texts_are_what_this_test_expects():
    assert len(TEXTS["corpus"]) == 48 and len(TEXTS["math500"]) == 500


@pytest.mark.parametrize("name", ["corpus", "math500"])
def test_no_firing_on_token_ids(name, teacher_tokenizer):
    options = LoopGuardOptions()
    ids = teacher_tokenizer([text for _, text in TEXTS[name]], add_special_tokens=False).input_ids
    fired, peaks = [], []
    for (doc_id, _), tokens in zip(TEXTS[name], ids, strict=True):
        guard = LoopGuard(options)
        if guard.feed_many(tokens):
            fired.append((doc_id, guard.tokens))
        peaks.append((guard.peak_share, doc_id))
    assert fired == []
    filled = sum(len(t) >= options.window + options.ngram - 1 for t in ids)  # texts that fill a window
    assert filled >= (38 if name == "corpus" else 150)
    assert max(peaks)[0] <= options.threshold - MARGIN, max(peaks)


@pytest.mark.parametrize("name", ["corpus", "math500"])
def test_no_firing_on_streamed_text(name):
    options = LoopGuardOptions()
    fired, peaks = [], []
    for doc_id, text in TEXTS[name]:
        guard = TextLoopGuard(options)
        for i in range(0, len(text), 5):  # as a server streams it, a few characters at a time
            if guard.feed_text(text[i : i + 5]):
                break
        if guard.finish():
            fired.append((doc_id, guard.tokens))
        peaks.append((guard.guard.peak_share, doc_id))
    assert fired == []
    assert max(peaks)[0] <= options.threshold - MARGIN, max(peaks)


def _partial_peaks(sequences, step: int, options: LoopGuardOptions) -> tuple[list, float, str, int]:
    """Feed each sequence from every `step`-th token on, as if a thinking began there, for less than a
    window (only partly filled windows are judged): the firings, and the highest share seen."""
    fired, best, where, starts = [], 0.0, "", 0
    span = options.window + options.ngram - 2  # one token short of a full window
    for doc_id, tokens in sequences:
        for start in range(0, max(1, len(tokens) - options.ngram), step):
            starts += 1
            guard = LoopGuard(options)
            if guard.feed_many(tokens[start : start + span]):
                fired.append((doc_id, start, guard.tokens))
            if guard.peak_share > best:
                best, where = guard.peak_share, f"{doc_id}@{start}"
    return fired, best, where, starts


@pytest.mark.parametrize("name", ["corpus", "math500"])
def test_no_firing_on_partly_filled_windows_from_anywhere_in_the_texts(name, teacher_tokenizer):
    """A cap below the window (or the start of any trajectory) is judged on a partly filled window once
    it holds min_fill n-grams: real text, from every 32nd token on, never fires there either, and its
    highest partial-window share keeps the full windows' margin (docs/loop-guard.md)."""
    from tpt.augment.loopguard import TEXT_PIECE

    options = LoopGuardOptions()
    texts = TEXTS[name]
    ids = teacher_tokenizer([text for _, text in texts], add_special_tokens=False).input_ids
    for sequences in (
        [(doc_id, tokens) for (doc_id, _), tokens in zip(texts, ids, strict=True)],
        [(doc_id, TEXT_PIECE.findall(text)) for doc_id, text in texts],
    ):
        fired, best, where, starts = _partial_peaks(sequences, 32, options)
        assert starts >= (1000 if name == "corpus" else 2500)
        assert fired == []
        assert best <= options.threshold - MARGIN, (best, where)
