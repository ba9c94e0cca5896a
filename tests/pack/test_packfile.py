"""The PACK_DIR format (formats.packfile): what `tpt pack` writes is what `tpt train` reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tpt.core.errors import ArtifactError, InputError
from tpt.formats.packfile import (
    FORMAT,
    KIND_DOCUMENT,
    KIND_PAD,
    KIND_TEMPLATE,
    KIND_THINKING,
    KINDS,
    LOSS_KINDS,
    PAD_SEGMENT,
    open_part,
    read_pack_index,
    shard_name,
    token_dtype,
)
from tpt.formats.packwriter import ShardWriter
from tpt.pack.packing import Rows
from tpt.pack.stage import PackConfig, run
from tpt.quality.checks import CheckConfig
from tpt.train.data import IGNORE_INDEX, PackedData


def test_what_pack_writes_train_reads(tmp_path, word_tok, h):
    src = h.write_records(
        tmp_path / "in.jsonl",
        [h.record(i, "the cat sat on a mat", "why because it was tired so") for i in range(6)],
    )
    out = tmp_path / "pack"
    config = PackConfig(inputs=(str(src),), output=out, tokenizer=str(word_tok), seq_len=8, shuffle_buffer=0,
                        shard_tokens=16, checks=CheckConfig(disabled=frozenset({"too_short", "repetition", "copy"})))  # fmt: skip
    summary = run(config, log=lambda *_: None).to_json()
    index = read_pack_index(out)
    assert index["format"] == FORMAT and index["kinds"] == {str(k): v for k, v in KINDS.items()}
    assert [s["name"] for s in index["shards"]] == [shard_name(k) for k in range(len(index["shards"]))]
    assert len(index["shards"]) > 1 and index["num_rows"] == summary["rows"] == sum(
        s["rows"] for s in index["shards"]
    )
    assert index["segments_pad"] == PAD_SEGMENT and index["dtype"] == token_dtype(index["vocab_size"]).name

    data = PackedData(out, block_attention=True)
    assert (data.num_rows, data.seq_len, data.kind_names) == (index["num_rows"], 8, LOSS_KINDS)
    rows = np.arange(data.num_rows)
    tokens = np.concatenate(
        [open_part(out, s["name"], "tokens", rows=s["rows"], seq_len=8) for s in index["shards"]]
    )
    kinds = np.concatenate(
        [open_part(out, s["name"], "kinds", rows=s["rows"], seq_len=8) for s in index["shards"]]
    )
    batch = data.batch(rows)
    assert (batch.input_ids == tokens).all()
    # Every kind pack wrote is one train knows; the counts are pack's own (stats.json).
    counts = np.bincount(kinds.ravel(), minlength=4)
    assert set(np.unique(kinds)) <= set(KINDS)
    assert (counts[KIND_DOCUMENT], counts[KIND_THINKING], counts[KIND_TEMPLATE], counts[KIND_PAD]) == (
        summary["document_tokens"], summary["thinking_tokens"], summary["template_tokens"], summary["pad_tokens"])  # fmt: skip
    # Loss falls on every next token that is not padding and not across a sample boundary.
    assert (batch.targets[batch.target_kinds == KIND_PAD] == IGNORE_INDEX).all()
    assert set(np.unique(batch.target_kinds)) <= {KIND_PAD, *LOSS_KINDS}


def _pack_dir(tmp_path, rows=5, seq_len=4, rows_per_shard=2):
    out = tmp_path / "p"
    (out / "tokenizer").mkdir(parents=True)
    writer = ShardWriter(out, seq_len=seq_len, dtype=token_dtype(100), rows_per_shard=rows_per_shard)
    tokens = np.arange(rows * seq_len).reshape(rows, seq_len) % 100
    writer.add(Rows(tokens, np.ones((rows, seq_len), np.uint8), np.zeros((rows, seq_len), np.uint16)))
    shards = writer.close()
    index = {"format": FORMAT, "seq_len": seq_len, "vocab_size": 100, "tokenizer": "tokenizer",
             "num_rows": rows, "shards": shards}  # fmt: skip
    (out / "index.json").write_text(json.dumps(index))
    return out, shards


def test_the_shard_writer_cuts_rows_into_shards_in_order(tmp_path):
    out, shards = _pack_dir(tmp_path)
    assert shards == [{"name": "shard-00000", "rows": 2}, {"name": "shard-00001", "rows": 2},
                      {"name": "shard-00002", "rows": 1}]  # fmt: skip
    data = PackedData(out)
    assert data.batch(np.array([4, 0])).input_ids.tolist() == [[16, 17, 18, 19], [0, 1, 2, 3]]
    assert not list(out.glob(".*"))  # written under a temporary name, then renamed


def test_a_damaged_pack_dir_is_a_clear_error(tmp_path):
    out, shards = _pack_dir(tmp_path)
    np.save(out / "shard-00001.kinds.npy", np.ones((2, 4), np.int32))
    with pytest.raises(ArtifactError, match=r"shard-00001\.kinds\.npy has dtype int32, expected uint8"):
        PackedData(out)
    np.save(out / "shard-00001.kinds.npy", np.ones((3, 4), np.uint8))
    with pytest.raises(ArtifactError, match=r"has shape \(3, 4\), expected \(2, 4\) per index.json"):
        PackedData(out)
    (out / "shard-00001.kinds.npy").unlink()
    with pytest.raises(ArtifactError, match=r"shard-00001\.kinds\.npy is missing \(listed in"):
        PackedData(out)
    (out / "index.json").write_text(json.dumps({"format": "tpt-packed-v0"}))
    with pytest.raises(
        InputError, match="has format 'tpt-packed-v0', expected 'tpt-packed-v1'; re-run `tpt pack`"
    ):
        PackedData(out)
    with pytest.raises(ValueError, match="token dtype int64"):
        ShardWriter(out, seq_len=4, dtype=np.dtype(np.int64), rows_per_shard=1)
