"""Fixtures for the pack tests: a hand-checkable word-level tokenizer and small JSONL record files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# One id per word, so expected ids can be written by hand. The whitespace pre-tokenizer drops the
# template's newlines, so the `newline` template's tags come out as exactly one token each.
VOCAB = {
    "<|endoftext|>": 0,
    "[UNK]": 1,
    "<think>": 2,
    "</think>": 3,
    "the": 4,
    "cat": 5,
    "sat": 6,
    "on": 7,
    "mat": 8,
    "a": 9,
    "dog": 10,
    "ran": 11,
    "why": 12,
    "because": 13,
    "it": 14,
    "was": 15,
    "tired": 16,
    "so": 17,
    "fast": 18,
    "home": 19,
}


def write_word_tokenizer(path: Path, *, with_eos: bool = True, truncate_at: int | None = None) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = dict(VOCAB) if with_eos else {k: v for k, v in VOCAB.items() if k != "<|endoftext|>"}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if with_eos:
        tok.add_special_tokens(["<|endoftext|>"])
    if truncate_at:
        tok.enable_truncation(truncate_at)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def write_records(path: Path, records: list[dict | str]) -> Path:
    """Write records as JSONL; a str entry is written as a raw line (for malformed input)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def record(i: int, text: str, thinking: str | None, source: str = "src", **extra) -> dict:
    r = {"id": i, "text": text, "finish_reason": "stop", "source": source, "meta": {}, **extra}
    if thinking is not None:
        r["thinking"] = thinking
    return r


@pytest.fixture
def word_tok(tmp_path: Path) -> Path:
    return write_word_tokenizer(tmp_path / "tok" / "tokenizer.json")


class Helpers:
    """The helpers above, as one fixture (test modules cannot import conftest under importlib mode)."""

    vocab = VOCAB
    record = staticmethod(record)
    write_records = staticmethod(write_records)
    write_word_tokenizer = staticmethod(write_word_tokenizer)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
