"""The testbed tokenizer: no unknown tokens on testbed text, single-digit numbers, lossless decoding."""

from __future__ import annotations

import itertools
import random
import re

from tpt.reproduce.problems import document
from tpt.reproduce.teacher import think
from tpt.reproduce.testbed import document_stream
from tpt.reproduce.testbed_tokenizer import EOS, UNK, tokenizer_json


def _tokenizer():
    import json

    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(tokenizer_json()))


def test_every_testbed_text_tokenizes_without_unknowns_and_decodes_back(corpus_config, world) -> None:
    tok = _tokenizer()
    unk = tok.token_to_id(UNK)
    for d in itertools.islice(document_stream(corpus_config, world, seed=0), 500):
        p = d.problem
        thinking = think(p, stated_answer=None, error_rate=0, rng=random.Random(0))
        text = f"{document(p, with_answer=not d.exercise, worked=d.worked)}\n<think>\n{thinking}\n</think>"
        ids = tok.encode(text).ids
        assert unk not in ids

        # Layout around the think tags is not kept (newlines carry nothing here); every word and digit is.
        def squash(s: str) -> str:
            return re.sub(r"\s*(</?think>)\s*", r"\1", s)

        assert squash(tok.decode(ids, skip_special_tokens=False)) == squash(text)


def test_numbers_are_single_digit_tokens() -> None:
    tok = _tokenizer()
    enc = tok.encode("Dan has 125 pens. Answer: 48.")
    assert enc.tokens == [
        "\u2581Dan",
        "\u2581has",
        "\u25811",
        "2",
        "5",
        "\u2581pens",
        ".",
        "\u2581Answer",
        ":",
        "\u25814",
        "8",
        ".",
    ]
    assert tok.token_to_id(EOS) == 1 and tok.token_to_id("<pad>") == 0


def test_general_words_cover_an_llm_teachers_english() -> None:
    """The fixed vocabulary also holds the sample corpus's commonest words, so an LLM's thinking is mostly
    words, not <unk>; coverage is what the report states."""
    from tpt.reproduce.testbed_tokenizer import GENERAL_WORDS, general_words, word_coverage

    words = general_words()
    assert len(words) == GENERAL_WORDS and words == general_words()  # fixed, deterministic
    assert {"the", "is", "of", "number"} <= set(words)
    assert word_coverage(["The answer is the number of pens because each bag has them."]) > 0.9
    assert word_coverage(["Zyxxq blorft"]) == 0.0
    tok = _tokenizer()
    assert tok.token_to_id(UNK) not in tok.encode("The answer is the number of pens.").ids
