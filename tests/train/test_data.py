"""Reading PACK_DIR rows, the seeded row order, targets and positions; refusing data not packed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tpt.core.errors import ArtifactError, InputError
from tpt.train.data import (
    IGNORE_INDEX,
    PackedData,
    RowOrder,
    positions_from_segments,
    shift_targets,
)


def test_rows_are_read_across_shards_exactly(pack_dir: Path) -> None:
    data = PackedData(pack_dir, block_attention=True)
    assert (data.num_rows, data.seq_len, data.vocab_size) == (64, 32, 18)
    tokens = np.concatenate([np.load(pack_dir / f"shard-0000{s}.tokens.npy") for s in (0, 1)])
    kinds = np.concatenate([np.load(pack_dir / f"shard-0000{s}.kinds.npy") for s in (0, 1)])
    rows = np.array([63, 0, 31, 32])  # both shards, both edges, out of order
    b = data.batch(rows)
    assert np.array_equal(b.input_ids, tokens[rows].astype(np.int64))
    # Targets are the next token; pad never is one, and neither is the first token of the next sample.
    want = np.where(kinds[rows] == 0, IGNORE_INDEX, tokens[rows])[:, 1:]
    got = b.targets[:, :-1]
    kept = got != IGNORE_INDEX
    assert np.array_equal(got[kept], want[kept])
    assert (b.targets[:, -1] == IGNORE_INDEX).all()
    assert (b.position_ids[:, 0] == 0).all()


def test_shift_and_positions_worked_examples() -> None:
    labels = np.array([[5, 6, 7, IGNORE_INDEX]])
    kinds = np.array([[1, 1, 2, 0]], np.uint8)
    targets, target_kinds = shift_targets(labels, kinds)
    assert targets.tolist() == [[6, 7, IGNORE_INDEX, IGNORE_INDEX]]
    assert target_kinds.tolist() == [[1, 2, 0, 0]]
    segments = np.array([[0, 0, 0, 1, 1, 65535, 65535]], np.uint16)
    assert positions_from_segments(segments).tolist() == [[0, 1, 2, 0, 1, 0, 1]]


def test_row_order_is_seeded_per_epoch_and_crosses_epochs() -> None:
    order = RowOrder(10, seed=3, shuffle=True)
    first = order.rows(0, 10)
    assert sorted(first.tolist()) == list(range(10))
    again = RowOrder(10, seed=3, shuffle=True)
    assert np.array_equal(again.rows(5, 10), np.concatenate([first[5:], order.rows(10, 5)]))
    assert not np.array_equal(order.rows(10, 10), first)  # epoch 1 is another permutation
    assert not np.array_equal(RowOrder(10, seed=4, shuffle=True).rows(0, 10), first)
    assert RowOrder(4, seed=0, shuffle=False).rows(2, 5).tolist() == [2, 3, 0, 1, 2]


def _copy(pack_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "pack"
    shutil.copytree(pack_dir, out)
    return out


def test_not_packed_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        PackedData(tmp_path / "nope")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.jsonl").write_text('{"text": "hi"}\n')
    with pytest.raises(InputError, match="not packed tpt data.*tpt pack"):
        PackedData(tmp_path / "corpus")


def test_wrong_format_shape_dtype_and_token_ids_are_refused(pack_dir: Path, tmp_path: Path) -> None:
    p = _copy(pack_dir, tmp_path)
    index = json.loads((p / "index.json").read_text())
    (p / "index.json").write_text(json.dumps({**index, "format": "other-v9"}))
    with pytest.raises(InputError, match="format 'other-v9'"):
        PackedData(p)
    (p / "index.json").write_text(json.dumps({**index, "seq_len": 16}))
    with pytest.raises(
        ArtifactError, match=r"shard-00000.tokens.npy has shape \(32, 32\), expected \(32, 16\)"
    ):
        PackedData(p)
    (p / "index.json").write_text(json.dumps(index))
    np.save(p / "shard-00001.kinds.npy", np.zeros((32, 32), np.int64))
    with pytest.raises(ArtifactError, match="shard-00001.kinds.npy has dtype int64, expected uint8"):
        PackedData(p)
    shutil.copy(pack_dir / "shard-00001.kinds.npy", p / "shard-00001.kinds.npy")
    (p / "index.json").write_text(json.dumps({**index, "vocab_size": 10}))
    with pytest.raises(ArtifactError, match="token id >= vocab_size 10"):
        PackedData(p).batch(np.arange(4))
