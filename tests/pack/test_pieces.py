"""The piece cache gives exactly the tokenizer's own ids, on adversarial texts, for every supported
pre-tokenizer; anything it cannot prove exact is left to the tokenizer."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tpt.pack.pieces import GPT2_PATTERN, PieceEncoder, piece_encoder_for, unsupported_reason

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")

# Fragments that stress the cut rule: every kind of whitespace beside a space, contractions, digit
# runs, combining marks, added tokens, bytes outside the trained vocabulary.
FRAGMENTS = [
    "the", "The", "cat", "sat", "on", "mat", "'s", "'t", "don't", "I'LL", "123", "4567", "3.14",
    " ", " ", " ", "  ", "   ", "\n", "\n\n", " \n", "\t", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f",
    "\x85", "\xa0", "\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u3000", "\u200b", "\ufeff",
    "\u180e", "e\u0301", "\u0301", "\u0308a", ".", ",", "!?", "(", ")", "—", "“", "”", "'", "-",
    "日本語", "😀", "<think>", "</think>", "<|endoftext|>", "<", "|", "Ġ", "x", "\\", "$$",
]  # fmt: skip

TRAIN_TEXT = [
    "The cat sat on the mat. It's 2024 and the dog didn't run 12345 times!\n\nWhy? Because.",
    "Let me think about what this says: the mat, the cat, and 3.14 are all here. Don't stop.",
    "def f(x):\n    return x ** 2  # squares\n\nprint(f(12))",
] * 20


def _tokenizer(pattern: str | None, *, nfc: bool = False, think_tokens: bool = True):
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    tok = Tokenizer(models.BPE())
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    if nfc:
        tok.normalizer = normalizers.NFC()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    if think_tokens:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("<think>", "</think>")])
    return tok


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "  ", "a", " a", "a ", "a  b", "a \n b", "\n", "x\ty z", "the the the"]
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 40)):
            parts.append(rng.choice(FRAGMENTS))
            if rng.random() < 0.6:
                parts.append(" ")
        texts.append("".join(parts))
    return texts


def _assert_exact(tok, encoder: PieceEncoder, texts: list[str], batch: int) -> None:
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        ids, offsets = encoder.encode(chunk)
        assert ids.dtype == np.uint32 and offsets[-1] == len(ids)
        expected = tok.encode_batch_fast(chunk, add_special_tokens=False)
        for k, (text, exp) in enumerate(zip(chunk, expected, strict=True)):
            got = ids[offsets[k] : offsets[k + 1]].tolist()
            assert got == exp.ids, f"text {text!r}"


@pytest.mark.parametrize(
    "pattern,nfc",
    [(None, False), (LLAMA3_PATTERN, False), (QWEN2_PATTERN, True), (GPT2_PATTERN, False)],
    ids=["bytelevel-regex", "llama3-split", "qwen2-split-nfc", "gpt2-split"],
)
def test_pieces_give_the_tokenizers_ids_on_adversarial_texts(pattern, nfc):
    tok = _tokenizer(pattern, nfc=nfc)
    encoder = piece_encoder_for(tok)
    assert encoder is not None, unsupported_reason(json.loads(tok.to_str()))
    texts = _texts(seed=1, n=1500)
    # Small batches: later batches hit pieces cached by earlier ones.
    _assert_exact(tok, encoder, texts, batch=50)
    _assert_exact(tok, encoder, texts[::-1], batch=500)  # all warm now
    assert encoder.misses < encoder.pieces


def test_the_cache_stays_within_its_capacity_and_stays_exact():
    tok = _tokenizer(None)
    encoder = piece_encoder_for(tok, capacity=8)
    assert encoder is not None
    _assert_exact(tok, encoder, _texts(seed=2, n=300), batch=30)
    assert len(encoder._body) <= 8 and len(encoder._head) <= 8


def test_real_text_with_a_trained_student_tokenizer(tmp_path):
    from importlib import resources

    from tpt.formats.student import load_student_tokenizer
    from tpt.tokenizer.stage import TokenizerConfig, run

    corpus = sorted(
        p
        for p in resources.files("tpt").joinpath("data/sample_corpus").iterdir()
        if p.name.endswith(".jsonl")
    )
    run(
        TokenizerConfig(
            corpus=[str(p) for p in corpus], output=tmp_path / "tok", vocab_size=2000, think_tokens=True
        )
    )
    tok = load_student_tokenizer(tmp_path / "tok").tokenizer
    encoder = piece_encoder_for(tok)
    assert encoder is not None
    texts = [json.loads(line)["text"] for p in corpus for line in p.read_text().splitlines()]
    _assert_exact(tok, encoder, texts + texts, batch=16)


def test_tokenizers_it_cannot_prove_exact_are_left_to_the_tokenizer():
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    word = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    word.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    assert piece_encoder_for(word) is None
    assert "pre_tokenizer" in unsupported_reason(json.loads(word.to_str()))

    prefix = _tokenizer(None, think_tokens=False)
    prefix.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    assert piece_encoder_for(prefix) is None

    strip = _tokenizer(None, think_tokens=False)
    strip.add_tokens([AddedToken("<x>", lstrip=True)])
    assert "strips whitespace" in unsupported_reason(json.loads(strip.to_str()))

    spaced = _tokenizer(None, think_tokens=False)
    spaced.add_tokens(["<a b>"])
    assert "contains whitespace" in unsupported_reason(json.loads(spaced.to_str()))

    other_regex = _tokenizer(r"\w+|\s+")
    assert piece_encoder_for(other_regex) is None

    assert piece_encoder_for(_tokenizer(None), capacity=0) is None


def test_a_production_tokenizer_smollm2():
    """The embedded teacher's 49k-vocabulary byte-level BPE (GPT-2 pre-tokenizer, 17 added tokens),
    as shipped: the cache gives its ids on the bundled corpus and on the adversarial texts."""
    from importlib import resources

    from tokenizers import Tokenizer

    from tpt.core.hfmodel import resolve_model_dir

    tok = Tokenizer.from_file(str(resolve_model_dir("embedded") / "tokenizer.json"))
    encoder = piece_encoder_for(tok)
    assert encoder is not None, unsupported_reason(json.loads(tok.to_str()))
    corpus = resources.files("tpt").joinpath("data/sample_corpus")
    texts = [
        json.loads(line)["text"]
        for p in sorted(corpus.iterdir())
        if p.name.endswith(".jsonl")
        for line in p.read_text().splitlines()
    ]
    texts += _texts(seed=3, n=500) + ["<|im_start|>user\nHi <|im_end|>", "a<|endoftext|> b"]
    _assert_exact(tok, encoder, texts + texts, batch=40)
