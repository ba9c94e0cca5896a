"""`tpt pack` end to end on tiny records with a word-level tokenizer whose ids are written by hand."""

import json
from pathlib import Path

import numpy as np
import pytest

from tpt.core.errors import ConfigError, InputError
from tpt.pack.stage import PackConfig, run
from tpt.quality.checks import CheckConfig

# The tiny texts are far below the default checks' thresholds; these tests are about packing.
NO_WORD_CHECKS = CheckConfig(disabled=frozenset({"too_short", "repetition", "copy"}))


def pack(tmp_path, inputs, tok, name="out", **kw) -> tuple[Path, dict]:
    kw.setdefault("shuffle_buffer", 0)
    kw.setdefault("checks", NO_WORD_CHECKS)
    out = tmp_path / name
    summary = run(
        PackConfig(inputs=tuple(map(str, inputs)), output=out, tokenizer=str(tok), **kw),
        log=lambda *_: None,
    )
    return out, summary.to_json()


def load(out: Path, what: str) -> np.ndarray:
    index = json.loads((out / "index.json").read_text())
    return np.concatenate([np.load(out / f"{s['name']}.{what}.npy", mmap_mode="r") for s in index["shards"]])


def test_exact_ids_kinds_and_segments_of_a_tiny_corpus(tmp_path, word_tok, h):
    src = h.write_records(
        tmp_path / "in.jsonl",
        [
            h.record(0, "the cat sat", "why because it was tired"),
            h.record(1, "a dog ran home\n", "  so fast  "),
        ],
    )
    out, stats = pack(tmp_path, [src], word_tok, seq_len=8)
    # [the cat sat] <think> [why because it was tired] </think> EOS |
    # [a dog ran home] <think> [so fast] </think> EOS
    assert load(out, "tokens").tolist() == [
        [4, 5, 6, 2, 12, 13, 14, 15],
        [16, 3, 0, 9, 10, 11, 19, 2],
        [17, 18, 3, 0, 0, 0, 0, 0],
    ]
    assert load(out, "kinds").tolist() == [
        [1, 1, 1, 3, 2, 2, 2, 2],
        [2, 3, 3, 1, 1, 1, 1, 3],
        [2, 2, 3, 3, 0, 0, 0, 0],
    ]
    assert load(out, "segments").tolist() == [
        [0] * 8,
        [0, 0, 0, 1, 1, 1, 1, 1],
        [0, 0, 0, 0] + [65535] * 4,
    ]
    assert (
        stats["documents"],
        stats["rows"],
        stats["document_tokens"],
        stats["thinking_tokens"],
        stats["template_tokens"],
        stats["total_tokens"],
        stats["pad_tokens"],
    ) == (2, 3, 7, 7, 6, 20, 4)
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == "tpt-packed-v1" and index["dtype"] == "uint16" and index["num_rows"] == 3
    assert (index["eos_id"], index["pad_id"], index["vocab_size"], index["mode"]) == (
        0,
        0,
        20,
        "tpt",
    )
    assert index["kinds"] == {"0": "pad", "1": "document", "2": "thinking", "3": "template"}
    assert index["template"]["think_tags"] == "plain_text"


def test_raw_mode_packs_the_same_documents_with_the_same_document_tokens(tmp_path, word_tok, h):
    src = h.write_records(
        tmp_path / "in.jsonl",
        [
            h.record(0, "the cat sat", "why because"),
            h.record(1, "a dog ran", "so fast", source="b"),
            h.record(2, "the mat", "", source="b"),  # empty thinking: rejected in the TPT arm only
        ],
    )
    out_raw, raw = pack(tmp_path, [src], word_tok, name="raw", seq_len=4, mode="raw")
    out_tpt, tpt = pack(tmp_path, [src], word_tok, name="tpt", seq_len=4, mode="tpt")
    # No thinking filter removes a document from the raw arm; the shared ones have the same ids.
    assert raw["document_tokens"] == tpt["document_tokens"] + 2 == 8
    assert raw["thinking_tokens"] == 0 and tpt["thinking_tokens"] == 4
    assert raw["skipped"] == {} and tpt["skipped"] == {"empty": 1}
    assert load(out_raw, "tokens").ravel().tolist() == [4, 5, 6, 0, 9, 10, 11, 0, 4, 8, 0, 0]
    assert raw["by_source"]["b"]["document_tokens"] == 5 and tpt["by_source"]["b"]["document_tokens"] == 3


def test_stats_add_up_to_the_shards(tmp_path, word_tok, h):
    """Every count in stats.json equals a recount of the written arrays, overall and per source."""
    words = list(h.vocab)[4:]
    rng = np.random.default_rng(1)
    recs = [
        h.record(
            i,
            " ".join(rng.choice(words, rng.integers(1, 30))),
            " ".join(rng.choice(words, rng.integers(1, 40))),
            source=f"s{i % 3}",
        )
        for i in range(60)
    ]
    src = h.write_records(tmp_path / "in.jsonl", recs)
    out, stats = pack(
        tmp_path,
        [src],
        word_tok,
        seq_len=16,
        shuffle_buffer=7,
        shard_tokens=16 * 5,
        weights={"s1": 2.0, "s2": 0.5},
    )
    kinds = load(out, "kinds")
    counts = np.bincount(kinds.ravel(), minlength=4)
    assert (counts[1], counts[2], counts[3], counts[0]) == (
        stats["document_tokens"],
        stats["thinking_tokens"],
        stats["template_tokens"],
        stats["pad_tokens"],
    )
    assert stats["total_tokens"] + stats["pad_tokens"] == kinds.size == stats["rows"] * 16
    assert counts[3] == stats["documents"] * 3  # <think>, </think>, EOS per augmented sample
    by = stats["by_source"]
    for key in (
        "documents",
        "document_tokens",
        "thinking_tokens",
        "template_tokens",
        "total_tokens",
    ):
        assert sum(s[key] for s in by.values()) == stats[key]
    r = stats["records"]
    assert r["read"] == 60 == r["packed"] + r["skipped"] + r["downsampled"]
    assert by["s1"]["documents"] == 2 * by["s1"]["records"]
    assert 0 < by["s2"]["downsampled"] < by["s2"]["records"]
    assert by["s2"]["documents"] == by["s2"]["records"] - by["s2"]["downsampled"]
    index = json.loads((out / "index.json").read_text())
    assert [s["rows"] for s in index["shards"]][:-1] == [5] * (len(index["shards"]) - 1)
    assert (load(out, "tokens")[kinds == 0] == 0).all()


def test_same_seed_same_bytes_other_seed_other_order(tmp_path, word_tok, h):
    recs = [h.record(i, " ".join(["the", "cat", "dog", "mat"][: 1 + i % 4]), "so fast") for i in range(50)]
    src = h.write_records(tmp_path / "in.jsonl", recs)
    a, _ = pack(tmp_path, [src], word_tok, name="a", seq_len=8, shuffle_buffer=16, seed=3)
    b, _ = pack(tmp_path, [src], word_tok, name="b", seq_len=8, shuffle_buffer=16, seed=3, batch_size=7)
    c, _ = pack(tmp_path, [src], word_tok, name="c", seq_len=8, shuffle_buffer=16, seed=4)
    for what in ("tokens", "kinds", "segments"):
        assert (a / f"shard-00000.{what}.npy").read_bytes() == (b / f"shard-00000.{what}.npy").read_bytes()
    assert not np.array_equal(load(a, "tokens"), load(c, "tokens"))
    # A shuffle reorders samples; it never changes them.
    assert sorted(load(a, "tokens").ravel().tolist()) == sorted(load(c, "tokens").ravel().tolist())


def test_mix_packs_a_fraction_of_samples_raw(tmp_path, word_tok, h):
    src = h.write_records(tmp_path / "in.jsonl", [h.record(i, "the cat sat", "so fast") for i in range(200)])
    out, stats = pack(tmp_path, [src], word_tok, seq_len=16, raw_fraction=0.25)
    assert stats["raw_samples"] + stats["augmented_samples"] == 200
    assert 25 <= stats["raw_samples"] <= 75
    assert stats["thinking_tokens"] == 2 * stats["augmented_samples"]
    assert stats["document_tokens"] == 3 * 200
    with pytest.raises(ConfigError, match="--mix"):
        PackConfig(inputs=("x",), output=tmp_path, tokenizer="t", seq_len=8, mode="raw", raw_fraction=0.5)


def test_bad_records_are_skipped_with_a_reason_never_lost(tmp_path, word_tok, h):
    src = h.write_records(
        tmp_path / "in.jsonl",
        [
            h.record(0, "the cat", "so fast"),
            "{not json",
            "[1, 2]",
            {"id": 3, "thinking": "so fast"},
            h.record(4, "the dog", None),
            h.record(5, "the mat", "so fast", finish_reason="length"),
            {"id": 6, "text": "a cat", "thinking": 7},
        ],
    )
    out, stats = pack(tmp_path, [src], word_tok, seq_len=8)
    assert stats["records"] == {"read": 7, "packed": 1, "skipped": 6, "downsampled": 0}
    assert stats["skipped"] == {
        "bad_thinking": 1,
        "malformed_json": 1,
        "missing_text": 1,
        "missing_thinking": 1,
        "not_an_object": 1,
        "truncated": 1,
    }
    lines = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert [(x["line"], x["reason"]) for x in lines] == [
        (2, "malformed_json"),
        (3, "not_an_object"),
        (4, "missing_text"),
        (5, "missing_thinking"),
        (6, "truncated"),
        (7, "bad_thinking"),
    ]  # in input order, whichever step found them
    assert all(x["file"] == str(src) for x in lines)


def test_no_validate_raw_mode_needs_no_thinking(tmp_path, word_tok, h):
    src = h.write_records(
        tmp_path / "in.jsonl", [h.record(0, "the cat", None), h.record(1, "a dog", "so fast")]
    )
    _, raw = pack(tmp_path, [src], word_tok, name="raw", seq_len=8, mode="raw", validate=False)
    assert raw["documents"] == 2 and raw["skipped"] == {}
    _, tpt = pack(tmp_path, [src], word_tok, name="tpt", seq_len=8, validate=False)
    assert tpt["documents"] == 1 and tpt["skipped"] == {"missing_thinking": 1}


def test_templates_change_the_format_and_custom_ones_are_checked(tmp_path, word_tok, h):
    src = h.write_records(tmp_path / "in.jsonl", [h.record(0, "the cat", "so fast")])
    out, _ = pack(tmp_path, [src], word_tok, seq_len=8, template="{thinking} <think> {document} </think>")
    assert load(out, "tokens")[0].tolist() == [17, 18, 2, 4, 5, 3, 0, 0]
    assert load(out, "kinds")[0].tolist() == [2, 2, 3, 1, 1, 3, 3, 0]
    out, stats = pack(tmp_path, [src], word_tok, name="inline", seq_len=8, template="inline")
    assert load(out, "tokens")[0].tolist() == [4, 5, 2, 17, 18, 3, 0, 0]
    assert stats["template"] == "{document} <think> {thinking} </think>"
    with pytest.raises(ConfigError, match="unknown token"):
        pack(tmp_path, [src], word_tok, name="o2", seq_len=8, template="{document} [[ {thinking} ]]")
    with pytest.raises(ConfigError, match="exactly once"):
        pack(tmp_path, [src], word_tok, name="o3", seq_len=8, template="{document} only")


def test_tokenizer_problems_are_clear_errors(tmp_path, h):
    src = h.write_records(tmp_path / "in.jsonl", [h.record(0, "the cat", "so fast")])
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    with pytest.raises(InputError, match="not a tokenizers JSON file"):
        pack(tmp_path, [src], broken, seq_len=8)
    with pytest.raises(InputError, match="does not exist"):
        pack(tmp_path, [src], tmp_path / "nope", seq_len=8)
    no_eos = h.write_word_tokenizer(tmp_path / "noeos" / "tokenizer.json", with_eos=False)
    with pytest.raises(ConfigError, match="--eos-token"):
        pack(tmp_path, [src], no_eos, seq_len=8)
    out, _ = pack(tmp_path, [src], no_eos, seq_len=8, eos_token="home")
    assert load(out, "tokens")[0].tolist() == [4, 5, 2, 17, 18, 3, 19, 19]  # pad = EOS


def test_truncation_in_a_tokenizer_json_is_switched_off(tmp_path, h):
    tok = h.write_word_tokenizer(tmp_path / "t" / "tokenizer.json", truncate_at=2)
    src = h.write_records(tmp_path / "in.jsonl", [h.record(0, "the cat sat on the mat", "so fast")])
    _, stats = pack(tmp_path, [src], tok, seq_len=16)
    assert stats["document_tokens"] == 6


def test_output_tokenizer_loads_with_autotokenizer(tmp_path, word_tok, h):
    transformers = pytest.importorskip("transformers")
    src = h.write_records(tmp_path / "in.jsonl", [h.record(0, "the cat", "so fast")])
    out, _ = pack(tmp_path, [src], word_tok, seq_len=8)
    tok = transformers.AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    index = json.loads((out / "index.json").read_text())
    assert tok.eos_token_id == index["eos_id"]
    assert tok("the cat")["input_ids"] == [4, 5]


def test_a_rerun_replaces_the_previous_output(tmp_path, word_tok, h):
    recs = [h.record(i, "the cat sat on the mat", "so fast") for i in range(20)]
    src = h.write_records(tmp_path / "in.jsonl", recs)
    out, _ = pack(tmp_path, [src], word_tok, seq_len=4, shard_tokens=8)
    many = len(list(out.glob("shard-*.tokens.npy")))
    out, _ = pack(tmp_path, [src], word_tok, seq_len=4, shard_tokens=4000)
    assert many > 1 and len(list(out.glob("shard-*.tokens.npy"))) == 1
    with pytest.raises(ConfigError, match="tpt augment"):
        (tmp_path / "aug").mkdir()
        (tmp_path / "aug" / "manifest.json").write_text('{"stage": "augment"}')
        pack(tmp_path, [src], word_tok, name="aug", seq_len=4)


def test_bad_text_and_duplicate_ids_are_named(tmp_path, word_tok, h):
    src = tmp_path / "in.jsonl"
    rows = [
        h.record(0, "the cat sat", "why"),
        h.record(1, "a dog ran", "so fast"),
        h.record(0, "the cat sat", "why"),
        h.record(2, "the \\ud800 mat", "so"),
    ]
    src.write_bytes(
        b"\xef\xbb\xbf"
        + "".join(json.dumps(r) + "\n" for r in rows).encode().replace(b"\\\\", b"\\")
        + b'{"id": 3, "text": "caf\xe9", "thinking": "a"}\n'
    )
    out, stats = pack(tmp_path, [src], word_tok, seq_len=8)
    assert stats["skipped"] == {"invalid_utf8": 1, "unencodable_text": 1}
    assert stats["flagged"] == {"duplicate_id": 1} and stats["duplicate_ids"]["count"] == 1
    [flagged] = [json.loads(x) for x in (out / "flagged.jsonl").read_text().splitlines()]
    assert (flagged["line"], flagged["reason"]) == (3, "duplicate_id")
    assert stats["documents"] == 3
    out, stats = pack(tmp_path, [src], word_tok, seq_len=8, name="first", duplicate_ids="keep-first")
    assert stats["skipped"] == {"duplicate_id": 1, "invalid_utf8": 1, "unencodable_text": 1}
    assert stats["documents"] == 2


def test_every_skipped_bad_line_carries_the_id_whenever_it_can_be_read(tmp_path, word_tok, h):
    """Issue 29: skipped.jsonl names a bad line's id whenever it can be read (its line always)."""
    lines = [
        (b'{"id": "surr", "text": "the \\ud800 mat", "thinking": "so"}', "surr", "unencodable_text"),
        (b'{"id": "lat", "text": "caf\xe9", "thinking": "a"}', "lat", "invalid_utf8"),
        (b'{"id": "cut", "text": "the cat', "cut", "malformed_json"),
        (b'{"id": "\\udc00x", "text": "the cat", "thinking": "a"}', None, "unencodable_text"),
    ]
    src = tmp_path / "in.jsonl"
    good = json.dumps(h.record(9, "the cat sat", "why")).encode()
    src.write_bytes(b"".join(raw + b"\n" for raw, _, _ in lines) + good + b"\n")
    out, stats = pack(tmp_path, [src], word_tok, seq_len=8)
    assert stats["documents"] == 1
    skipped = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert [(s["line"], s["id"], s["reason"]) for s in skipped] == [
        (n, doc_id, reason) for n, (_, doc_id, reason) in enumerate(lines, 1)
    ]


def test_the_raw_arm_names_bad_corpus_lines_as_augment_does(tmp_path, word_tok, h):
    """The raw arm reads the augment run's corpus: its bad lines keep augment's reasons."""
    from tpt.cli import main
    from tpt.testing.openai_stub import StubConfig, StubServer

    corpus = tmp_path / "docs.jsonl"
    corpus.write_bytes(
        b'{"id": 1, "text": "the cat sat"}\n{"id": 2, "text": "caf\xe9"}\n'
        b'{"id": 3, "text": "a \\ud800 dog"}\n{"id": 4, "text": "a dog ran"}\n'
    )
    with StubServer(StubConfig(latency_ms=1, words=4)) as stub:
        assert (
            main(
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
                    "--no-progress",
                ]
            )
            == 0
        )
    out, stats = pack(tmp_path, [tmp_path / "aug"], word_tok, seq_len=8, mode="raw")
    assert stats["skipped"] == {"invalid_utf8": 1, "unencodable_text": 1} and stats["documents"] == 2
    skipped = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert [(s["line"], s["id"], s["reason"]) for s in skipped] == [
        (2, 2, "invalid_utf8"),
        (3, 3, "unencodable_text"),
    ]


def test_run_returns_a_typed_summary_whose_json_is_stats_json(tmp_path, word_tok, h):
    src = h.write_records(tmp_path / "in.jsonl", [h.record(i, "the cat sat", "so fast") for i in range(3)])
    out = tmp_path / "out"
    config = PackConfig(
        inputs=(str(src),), output=out, tokenizer=str(word_tok), seq_len=8, checks=NO_WORD_CHECKS
    )
    summary = run(config, log=lambda *_: None)
    assert summary.to_json() == json.loads((out / "stats.json").read_text())
    assert (summary.output, summary.records_read, summary.records_skipped, summary.documents) == (
        out,
        3,
        0,
        3,
    )
    assert (summary.augmented_samples, summary.rows, summary.seq_len) == (3, summary.stats["rows"], 8)
    assert summary.total_tokens + summary.pad_tokens == summary.rows * 8 and summary.wall_seconds >= 0
