"""Which document text each arm packs, on a real `tpt augment` run (openai backend, local stub server):
the raw arm gets every original document of the run at full length, the TPT arm the truncated text the
teacher saw unless asked for the full one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tpt.cli import main
from tpt.testing.openai_stub import StubConfig, StubServer

LONG = "the cat sat on the mat so the dog ran home because it was tired"  # 15 words, 63 characters
DOCS = [
    ("d0", "the cat sat"),
    ("d1", LONG),  # cut to the teacher's budget
    ("d2", "POISON a dog ran"),  # the server refuses it: no record, a generation failure
    ("d3", "so fast CUTME"),  # its trajectory is cut by the length limit: the TPT arm drops it
    ("d4", "   "),  # empty: not a document in either arm
    ("d5", LONG + " on the mat"),
]


@pytest.fixture
def run(tmp_path: Path, h) -> dict[str, Path]:
    corpus = tmp_path / "corpus" / "docs.jsonl"
    corpus.parent.mkdir()
    corpus.write_text("".join(json.dumps({"id": i, "text": t, "source": "web"}) + "\n" for i, t in DOCS))
    tok = h.write_word_tokenizer(tmp_path / "tok" / "tokenizer.json")
    config = StubConfig(latency_ms=1, words=30, schedule=(("POISON", ("400*",)), ("CUTME", ("length",))))
    with StubServer(config) as stub:
        code = main(
            [
                "augment",
                str(corpus),
                "--output",
                str(tmp_path / "aug"),
                "--backend",
                "openai",
                "--base-url",
                stub.base_url,
                "--model",
                "stub",
                "--max-retries",
                "0",
                "--max-doc-tokens",
                "5",
                "--no-progress",
            ]
        )  # 5 tokens ~ 20 characters
    assert code == 0  # d2 failed and d4 is empty: recorded failures, the run is complete
    return {"corpus": corpus, "aug": tmp_path / "aug", "tok": tok, "tmp": tmp_path}


def pack(run: dict[str, Path], name: str, *extra: str) -> tuple[Path, dict]:
    out = run["tmp"] / name
    assert (
        main(
            [
                "pack",
                str(run["aug"]),
                "--output",
                str(out),
                "--tokenizer",
                str(run["tok"]),
                "--seq-len",
                "8",
                "--shuffle-buffer",
                "0",
                "--workers",
                "0",
                "--no-progress",
                "--min-thinking-words",
                "1",
                "--disable-check",
                "repetition",
                *extra,
            ]
        )
        == 0
    )
    return out, json.loads((out / "stats.json").read_text())


def words(text: str) -> int:
    return len(text.split())


def test_the_raw_arm_packs_every_original_document_at_full_length(run, h):
    records = [
        json.loads(x) for x in (run["aug"] / "shards" / "part-00000000.jsonl").read_text().splitlines()
    ]
    assert sorted(r["id"] for r in records) == ["d0", "d1", "d3", "d5"]
    assert next(r for r in records if r["id"] == "d1")["doc_truncated"]

    out, raw = pack(run, "raw", "--mode", "raw")
    full = [t for _, t in DOCS if t.strip()]
    assert raw["document_tokens"] == sum(map(words, full)) and raw["documents"] == 5
    assert raw["skipped"] == {"missing_text": 1}  # the empty document; nothing for thinking
    assert raw["document_text"] == "full" and raw["inputs"][0]["text"] == "corpus"
    # Row by row, the documents in corpus order, each followed by EOS (id 0).
    tokens = np.concatenate([np.load(out / f"shard-00000.{k}.npy") for k in ("tokens",)]).ravel()
    vocab = {v: k for k, v in h.vocab.items()}
    text = " ".join(vocab.get(int(t), "?") for t in tokens[: raw["total_tokens"]])
    assert text.split(" <|endoftext|>")[1].strip() == LONG

    # The truncated option: the records' text (what the teacher saw), records only.
    _, cut = pack(run, "raw-cut", "--mode", "raw", "--document-text", "truncated")
    assert cut["documents"] == 4 and cut["document_tokens"] == sum(words(r["text"]) for r in records)
    assert cut["document_tokens"] < raw["document_tokens"]


def test_the_tpt_arm_trains_on_the_truncated_document_unless_asked(run):
    records = {
        json.loads(x)["id"]: json.loads(x)
        for x in (run["aug"] / "shards" / "part-00000000.jsonl").read_text().splitlines()
    }
    kept = [r for r in records.values() if r["finish_reason"] != "length"]  # d3 is cut: dropped
    _, tpt = pack(run, "tpt")
    assert tpt["document_text"] == "truncated" and tpt["augmented_samples"] == 3
    assert tpt["document_tokens"] == sum(words(r["text"]) for r in kept)
    _, full = pack(run, "tpt-full", "--document-text", "full")
    originals = dict(DOCS)
    assert full["document_tokens"] == sum(words(originals[r["id"]]) for r in kept)
    assert full["thinking_tokens"] == tpt["thinking_tokens"]


def test_a_changed_or_missing_corpus_is_a_clear_error(run, capsys):
    args = ["pack", str(run["aug"]), "--tokenizer", str(run["tok"]), "--seq-len", "8", "--mode", "raw"]
    lines = run["corpus"].read_text().splitlines()
    run["corpus"].write_text("\n".join(lines[1:]) + "\n")  # a line went: every index moved
    assert main([*args, "--output", str(run["tmp"] / "x")]) == 2
    assert "changed since the run" in capsys.readouterr().err
    run["corpus"].unlink()
    assert main([*args, "--output", str(run["tmp"] / "y")]) == 2
    err = capsys.readouterr().err
    assert "is gone" in err and "--document-text truncated" in err
    # The records alone still pack.
    assert main([*args, "--output", str(run["tmp"] / "z"), "--document-text", "truncated"]) == 0
    # Full text for the TPT arm needs the corpus of an augment run.
    records = run["aug"] / "shards" / "part-00000000.jsonl"
    assert (
        main(
            [
                "pack",
                str(records),
                "--tokenizer",
                str(run["tok"]),
                "--seq-len",
                "8",
                "--output",
                str(run["tmp"] / "w"),
                "--document-text",
                "full",
            ]
        )
        == 2
    )
    assert "not a tpt augment output directory" in capsys.readouterr().err
