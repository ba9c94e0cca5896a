"""One truncation for every backend: a prefix of the document, counted exactly in the teacher's tokenizer."""

from __future__ import annotations

import pytest

from tpt.augment.truncation import rust_tokenizer, truncate_approx, truncate_texts

TEXTS = [
    "the lattice of subgroups is modular " * 40,
    "short",
    "émoji 😀😀😀 and ünïcode " * 30,
    "",
    " subgroups" * 100,  # tokens longer than the 6-characters-per-token window
]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(["the lattice of subgroups is modular"] * 50, trainer)
    root = tmp_path_factory.mktemp("bpe")
    tok.save(str(root / "tokenizer.json"))
    tok.model.save(str(root))  # vocab.json + merges.txt, for the slow tokenizer
    return tok, root


def _check(out, count, limit):
    for text, (kept, n, cut) in zip(TEXTS, out, strict=True):
        assert text.startswith(kept)
        assert n == count(kept) <= limit
        assert cut == (kept != text)


def test_rust_and_fast_transformers_tokenizers_cut_the_same(bpe):
    from transformers import PreTrainedTokenizerFast

    tok, _ = bpe
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    for limit in (1, 7, 25):
        rust_out = truncate_texts(tok, TEXTS, limit)
        _check(rust_out, lambda t: len(tok.encode(t, add_special_tokens=False).ids), limit)
        assert truncate_texts(fast, TEXTS, limit) == rust_out
    assert rust_out[0][1] >= 24  # cut near the limit, not far before it


def _pair_tokenizer():
    """A real Python-backend (slow) transformers tokenizer: one token per two characters."""
    from transformers import PreTrainedTokenizer

    chars = sorted(set("".join(TEXTS)))
    vocab = {a + b: i for i, (a, b) in enumerate((a, b) for a in chars for b in chars)}
    vocab.update({c: len(vocab) + i for i, c in enumerate(chars)})
    inverse = {i: t for t, i in vocab.items()}

    class PairTokenizer(PreTrainedTokenizer):
        def get_vocab(self):
            return dict(vocab)

        @property
        def vocab_size(self):
            return len(vocab)

        def _tokenize(self, text, **kwargs):
            return [text[i : i + 2] for i in range(0, len(text), 2)]

        def _convert_token_to_id(self, token):
            return vocab[token]

        def _convert_id_to_token(self, index):
            return inverse[index]

        def convert_tokens_to_string(self, tokens):
            return "".join(tokens)

    return PairTokenizer()


def test_a_slow_tokenizer_is_cut_by_decoding():
    slow = _pair_tokenizer()
    assert rust_tokenizer(slow) is None
    assert slow("abcde", add_special_tokens=False)["input_ids"] == [
        slow.get_vocab()[t] for t in ("ab", "cd", "e")
    ]
    for limit in (1, 7, 25):
        out = truncate_texts(slow, TEXTS, limit)
        _check(out, lambda t: len(slow(t, add_special_tokens=False)["input_ids"]), limit)


def test_a_tokenizer_that_truncates_is_counted_on_a_copy_that_does_not(bpe):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(bpe[0].to_str())
    tok.enable_truncation(5)
    rust = rust_tokenizer(tok)
    assert rust is not tok and rust.truncation is None and tok.truncation is not None
    [(_, n, cut)] = truncate_texts(tok, [TEXTS[0]], 25)
    assert cut and n >= 24


def test_without_a_tokenizer_the_cut_is_an_estimate_at_a_word_boundary():
    kept, n, cut = truncate_approx("alpha beta gamma delta epsilon", 4)
    assert cut and kept == "alpha beta gamma" and n == 4  # 16 characters: 4 x 4
