"""Fixtures for the train tests: a tiny PACK_DIR written through the pack format's writer (formats.packfile).

The data is a learnable toy: documents `a + b = c .` (digits as tokens) followed by a thinking piece
`<think> b + a = c </think>` and `<eos>`, packed into rows of 32 tokens with a pad tail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tpt.core.artifacts import write_json
from tpt.formats.packfile import (
    KIND_DOCUMENT,
    KIND_PAD,
    KIND_TEMPLATE,
    KIND_THINKING,
    PAD_SEGMENT,
    index_json,
    token_dtype,
)
from tpt.formats.packwriter import ShardWriter
from tpt.pack.packing import Rows

WORDS = ["<pad>", "<eos>", "<think>", "</think>", "+", "=", ".", "x"] + [str(d) for d in range(10)]


def make_tokenizer(out: Path) -> None:
    """A word-level tokenizer (18 tokens) saved as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="x"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="x")
    fast.save_pretrained(out)


def sample_pieces(rng: np.random.Generator) -> list[tuple[list[int], int]]:
    """One augmented sample as (ids, kind) pieces: document (1), template (3), thinking (2)."""
    v = {w: i for i, w in enumerate(WORDS)}
    a, b = rng.integers(0, 5, size=2)
    c = a + b
    doc = [v[str(a)], v["+"], v[str(b)], v["="], v[str(c)], v["."]]
    think = [v[str(b)], v["+"], v[str(a)], v["="], v[str(c)]]
    return [
        (doc, KIND_DOCUMENT),
        ([v["<think>"]], KIND_TEMPLATE),
        (think, KIND_THINKING),
        ([v["</think>"], v["<eos>"]], KIND_TEMPLATE),
    ]


def make_pack(out: Path, *, rows: int = 64, seq_len: int = 32, seed: int = 0, shards: int = 2) -> Path:
    """Write a PACK_DIR: (rows, seq_len) tokens/kinds/segments shards, index.json, stats.json, tokenizer/."""
    out.mkdir(parents=True, exist_ok=True)
    make_tokenizer(out / "tokenizer")
    rng = np.random.default_rng(seed)
    tokens = np.zeros((rows, seq_len), np.uint16)
    kinds = np.zeros((rows, seq_len), np.uint8)
    segments = np.full((rows, seq_len), PAD_SEGMENT, np.uint16)
    docs = 0
    for r in range(rows):
        pos, seg = 0, 0
        while True:
            pieces = sample_pieces(rng)
            n = sum(len(p) for p, _ in pieces)
            if pos + n > seq_len:
                break
            for ids, kind in pieces:
                tokens[r, pos : pos + len(ids)] = ids
                kinds[r, pos : pos + len(ids)] = kind
                segments[r, pos : pos + len(ids)] = seg
                pos += len(ids)
            seg += 1
            docs += 1
    writer = ShardWriter(
        out, seq_len=seq_len, dtype=token_dtype(len(WORDS)), rows_per_shard=-(-rows // shards)
    )
    writer.add(Rows(tokens, kinds, segments))
    index = index_json(
        seq_len=seq_len,
        dtype=writer.dtype,
        vocab_size=len(WORDS),
        eos_id=1,
        pad_id=0,
        bos_id=None,
        bos_token=None,
        mode="tpt",
        document_text="kept",
        shards=writer.close(),
    )
    write_json(out / "index.json", index)
    count = lambda k: int((kinds == k).sum())  # noqa: E731
    stats = {
        "documents": docs,
        "rows": rows,
        "document_tokens": count(KIND_DOCUMENT),
        "thinking_tokens": count(KIND_THINKING),
        "template_tokens": count(KIND_TEMPLATE),
        "pad_tokens": count(KIND_PAD),
        "total_tokens": int(kinds.size - count(KIND_PAD)),
    }
    (out / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pack(tmp_path_factory.mktemp("pack") / "pack")


GSM8K_TRAIN = Path(__file__).resolve().parents[2] / "src" / "tpt" / "data" / "eval" / "gsm8k" / "train.jsonl"
CHAT_SPECIALS = ["<pad>", "<eos>", "<|im_start|>", "<|im_end|>"]


def make_bpe_student(out: Path, *, vocab_size: int = 512, texts: int = 400, seed: int = 0) -> Path:
    """A tiny random-init student (tpt's `tiny` shape) with a byte-level BPE tokenizer trained on
    GSM8K train text, saved as a Hugging Face directory: the `--init` for SFT tests."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tpt.train.model import build_config, create_model

    lines = [json.loads(x) for x in GSM8K_TRAIN.read_text().splitlines()[:texts]]
    corpus = [r["question"] + "\n" + r["answer"] for r in lines]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=CHAT_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    config = build_config("tiny", vocab_size=len(fast), seq_len=256, pad_id=0, eos_id=1)
    model = create_model(config, seed=seed)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def bpe_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bpe_student(tmp_path_factory.mktemp("student") / "init")
