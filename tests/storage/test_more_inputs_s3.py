"""The other stages that read a corpus take URLs too: estimate's sample and the tokenizer's training."""

from __future__ import annotations

import json

from tpt.estimate.sample import draw_sample
from tpt.tokenizer.stage import TokenizerConfig
from tpt.tokenizer.stage import run as train_tokenizer


def _records(n: int) -> bytes:
    return b"".join(
        json.dumps(
            {"id": i, "text": f"the cat {i} sat on the mat", "thinking": "because it was tired"}
        ).encode()
        + b"\n"
        for i in range(n)
    )


def test_estimate_samples_a_corpus_on_s3(s3, tmp_path):
    s3.put("corpus/a.jsonl", _records(30))
    s3.put("corpus/b.jsonl", _records(30))
    total, kept = draw_sample([s3.url("corpus/")], 10, seed=1, out=tmp_path / "sample.jsonl")
    assert (total, kept) == (60, 10)
    assert len((tmp_path / "sample.jsonl").read_text().splitlines()) == 10


def test_the_tokenizer_trains_on_records_on_s3(s3, tmp_path):
    s3.put("aug/records.jsonl", _records(50))
    train_tokenizer(
        TokenizerConfig(corpus=(s3.url("aug/records.jsonl"),), output=tmp_path / "tok", vocab_size=300)
    )
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))
    assert tok.decode(tok.encode("the cat sat").ids) == "the cat sat"
