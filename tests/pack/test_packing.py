"""RowPacker: rows, kinds, segments and splitting, on hand-written samples."""

import numpy as np
import pytest

from tpt.core.errors import ConfigError
from tpt.formats.packfile import PAD_SEGMENT
from tpt.pack.packing import RowPacker, Sample

D, T, X = 1, 2, 3  # document, thinking, template kinds


def sample(ids, runs, source=0, augmented=True):
    return Sample(np.asarray(ids, dtype=np.uint32), tuple(runs), source, augmented)


def collect(packer, batches):
    rows = [packer.add(b) for b in batches] + [packer.finish()]
    tokens = np.concatenate([r.tokens for r in rows])
    kinds = np.concatenate([r.kinds for r in rows])
    segments = np.concatenate([r.segments for r in rows])
    return tokens, kinds, segments


def test_stream_packs_samples_end_to_end_and_pads_only_the_last_row():
    a = sample([10, 11, 12, 0], [(D, 2), (T, 1), (X, 1)])
    b = sample([20, 0], [(D, 1), (X, 1)])
    c = sample([30, 31, 32, 0], [(D, 3), (X, 1)])
    tokens, kinds, segments = collect(RowPacker(4, "stream", pad_id=99), [[a, b], [c]])
    assert tokens.tolist() == [[10, 11, 12, 0], [20, 0, 30, 31], [32, 0, 99, 99]]
    assert kinds.tolist() == [[D, D, T, X], [D, X, D, D], [D, X, 0, 0]]
    # Row 2 starts inside sample c: that piece is segment 0 of its row.
    assert segments.tolist() == [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, PAD_SEGMENT, PAD_SEGMENT]]


def test_a_sample_longer_than_a_row_is_split_across_rows_not_dropped():
    """Invariant: every token of every sample is in the output, in order."""
    long = sample(list(range(1, 11)), [(D, 6), (T, 3), (X, 1)])
    packer = RowPacker(4, "stream", pad_id=0)
    tokens, kinds, segments = collect(packer, [[long]])
    assert tokens.ravel()[:10].tolist() == list(range(1, 11))
    assert kinds.ravel()[:10].tolist() == [D] * 6 + [T] * 3 + [X]
    assert segments.tolist() == [[0] * 4, [0] * 4, [0, 0, PAD_SEGMENT, PAD_SEGMENT]]
    assert packer.split_samples == 1 and packer.pad_tokens == 2


def test_whole_policy_starts_a_new_row_instead_of_cutting_a_sample_that_fits():
    a = sample([1, 2, 0], [(D, 2), (X, 1)])
    b = sample([3, 4, 5, 0], [(D, 3), (X, 1)])
    c = sample([6, 0], [(D, 1), (X, 1)])
    packer = RowPacker(4, "whole", pad_id=99)
    tokens, kinds, segments = collect(packer, [[a, b, c]])
    assert tokens.tolist() == [[1, 2, 0, 99], [3, 4, 5, 0], [6, 0, 99, 99]]
    assert segments.tolist() == [
        [0, 0, 0, PAD_SEGMENT],
        [0, 0, 0, 0],
        [0, 0, PAD_SEGMENT, PAD_SEGMENT],
    ]
    assert packer.split_samples == 0 and packer.pad_tokens == 3


def test_whole_policy_still_splits_a_sample_longer_than_a_row():
    a = sample([1, 0], [(D, 1), (X, 1)])
    long = sample([5, 6, 7, 8, 9, 0], [(D, 5), (X, 1)])
    packer = RowPacker(4, "whole", pad_id=99)
    tokens, _, segments = collect(packer, [[a, long]])
    # The long sample continues from where the row stands (no padding in front of it).
    assert tokens.tolist() == [[1, 0, 5, 6], [7, 8, 9, 0]]
    assert segments.tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]
    assert packer.split_samples == 1


def test_batches_do_not_change_the_rows():
    """Packing is a function of the sample sequence, not of how it is cut into add() calls."""
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(40):
        n = int(rng.integers(1, 12))
        samples.append(sample(rng.integers(1, 50, n), [(D, n - 1), (X, 1)] if n > 1 else [(X, 1)]))
    for policy in ("stream", "whole"):
        one = collect(RowPacker(8, policy, 0), [samples])
        many = collect(RowPacker(8, policy, 0), [samples[i : i + 3] for i in range(0, 40, 3)])
        for x, y in zip(one, many, strict=True):
            np.testing.assert_array_equal(x, y)


def test_seq_len_and_policy_are_checked():
    with pytest.raises(ConfigError, match="--seq-len"):
        RowPacker(0, "stream", 0)
    with pytest.raises(ConfigError, match="--seq-len"):
        RowPacker(70_000, "stream", 0)
    with pytest.raises(ConfigError, match="--packing"):
        RowPacker(8, "best-fit", 0)
