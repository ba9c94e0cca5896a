"""The Megatron-LM indexed dataset (.bin/.idx) holds the same samples, in the same order, as the rows."""

import json
import struct

import numpy as np
import pytest

from tpt.pack.megatron import read_megatron
from tpt.pack.stage import PackConfig, run
from tpt.quality.checks import CheckConfig


@pytest.fixture
def packed(tmp_path, word_tok, h):
    recs = [h.record(i, "the cat sat on the mat"[: 3 + 4 * (i % 5)], "so fast") for i in range(12)]
    src = h.write_records(tmp_path / "in.jsonl", recs)
    out = tmp_path / "out"
    run(
        PackConfig(
            inputs=(str(src),),
            output=out,
            tokenizer=str(word_tok),
            seq_len=8,
            megatron=True,
            shuffle_buffer=5,
            checks=CheckConfig(disabled=frozenset({"too_short"})),
        ),
        log=lambda *_: None,
    )
    return out


def test_index_layout_is_megatrons(packed):
    data = (packed / "megatron" / "text_document.idx").read_bytes()
    assert data[:9] == b"MMIDIDX\x00\x00"
    version, code, sequences, documents = struct.unpack_from("<QBQQ", data, 9)
    assert (version, code, sequences, documents) == (1, 8, 12, 13)  # code 8 = uint16
    lengths = np.frombuffer(data, np.int32, sequences, 34)
    pointers = np.frombuffer(data, np.int64, sequences, 34 + 4 * sequences)
    doc_index = np.frombuffer(data, np.int64, documents, 34 + 12 * sequences)
    assert pointers.tolist() == (np.cumsum([0, *lengths[:-1]]) * 2).tolist()
    assert doc_index.tolist() == list(range(13))
    assert len(data) == 34 + 20 * sequences + 8
    assert (packed / "megatron" / "text_document.bin").stat().st_size == 2 * int(lengths.sum())


def test_sequences_equal_the_packed_stream(packed):
    index = json.loads((packed / "index.json").read_text())
    tokens = np.load(packed / "shard-00000.tokens.npy").ravel()
    kinds = np.load(packed / "shard-00000.kinds.npy").ravel()
    stream = tokens[kinds != 0]
    sequences = read_megatron(packed / "megatron" / "text_document")
    assert np.concatenate(sequences).tolist() == stream.tolist()
    assert all(s[-1] == index["eos_id"] for s in sequences)
    assert index["megatron"] == "megatron/text_document"


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:Transformer Engine and Apex are not installed", "ignore::DeprecationWarning"
)
def test_megatron_core_reads_it(packed):
    """Megatron-core's own reader (the dev extra installs it; importing it takes ~10 s: it loads torch)."""
    from megatron.core.datasets import indexed_dataset as indexed

    ds = indexed.IndexedDataset(str(packed / "megatron" / "text_document"), mmap=True)
    ours = read_megatron(packed / "megatron" / "text_document")
    assert len(ds) == len(ours)
    for i, seq in enumerate(ours):
        assert ds[i].tolist() == seq.tolist()
