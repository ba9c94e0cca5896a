"""`tpt tokenizer train`: a byte-level BPE that AutoTokenizer loads, and the student tokenizer loader."""

import json
from importlib import resources
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.core.errors import ConfigError, InputError
from tpt.formats.student import load_student_tokenizer, save_student_tokenizer
from tpt.tokenizer.stage import TokenizerConfig, run

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "bpe"
    assert main(["tokenizer", "train", str(CORPUS), "--vocab-size", "600", "--output", str(out)]) == 0
    return out


def test_trained_tokenizer_has_the_vocab_size_and_an_eos(trained):
    student = load_student_tokenizer(trained)
    assert student.vocab_size == 600
    assert (student.eos_token, student.eos_id, student.pad_id) == ("<|endoftext|>", 0, 0)
    ids = student.tokenizer.encode("Déjà vu: 3 × 4 = 12 ✓", add_special_tokens=False).ids
    assert (
        student.unk_id is None and student.tokenizer.decode(ids) == "Déjà vu: 3 × 4 = 12 ✓"
    )  # byte-level: lossless


def test_autotokenizer_loads_the_trained_directory(trained):
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(trained))
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 0 and len(tok) == 600
    student = load_student_tokenizer(trained)
    text = "The determinant of a matrix is ad - bc."
    assert tok(text)["input_ids"] == student.tokenizer.encode(text, add_special_tokens=False).ids


def test_think_tokens_option_makes_each_tag_one_token(tmp_path):
    out = tmp_path / "t"
    run(TokenizerConfig(corpus=[CORPUS], output=out, vocab_size=400, think_tokens=True))
    student = load_student_tokenizer(out)
    assert student.vocab_size == 400
    ids = student.tokenizer.encode("x\n<think>\ny\n</think>", add_special_tokens=False).ids
    assert (
        student.tokenizer.token_to_id("<think>") in ids and student.tokenizer.token_to_id("</think>") in ids
    )
    # Not special: decoding without special tokens keeps them.
    assert "<think>" in student.tokenizer.decode(ids, skip_special_tokens=True)


def test_pieces_encoded_apart_match_the_whole_sample_for_the_newline_template(trained):
    """docs/pack.md claims: with a byte-level BPE, [document, separator, thinking, separator] encoded
    piece by piece gives the ids of the whole string when pieces meet at a newline."""
    tok = load_student_tokenizer(trained).tokenizer
    doc, thinking = (
        "A matrix is invertible when det(A) != 0.",
        "Why? Because the map must be undone.",
    )
    pieces = [doc, "\n\n<think>\n", thinking, "\n</think>"]
    apart = [i for p in pieces for i in tok.encode(p, add_special_tokens=False).ids]
    assert apart == tok.encode("".join(pieces), add_special_tokens=False).ids


def test_bad_options_and_empty_corpus(tmp_path):
    with pytest.raises(ConfigError, match="--vocab-size"):
        TokenizerConfig(corpus=["c"], output="o", vocab_size=200)
    with pytest.raises(ConfigError, match="--fields"):
        TokenizerConfig(corpus=["c"], output="o", vocab_size=1000, fields=("title",))
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"id": 1}\n')
    with pytest.raises(InputError, match="no usable records"):
        run(TokenizerConfig(corpus=[empty], output=tmp_path / "o", vocab_size=300))


def test_a_bare_tokenizer_json_gets_a_config_autotokenizer_understands(trained, tmp_path):
    transformers = pytest.importorskip("transformers")
    student = load_student_tokenizer(trained / "tokenizer.json")
    assert student.eos_token == "<|endoftext|>"  # found among the known EOS tokens
    save_student_tokenizer(student, tmp_path / "saved")
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert tok.eos_token_id == 0


def test_a_directory_with_only_a_slow_tokenizer_is_converted(trained, tmp_path):
    pytest.importorskip("transformers")
    # A GPT-2 style directory: vocab.json + merges.txt, no tokenizer.json.
    spec = json.loads((trained / "tokenizer.json").read_text())
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "vocab.json").write_text(json.dumps(spec["model"]["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    (slow / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (slow / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "GPT2Tokenizer", "eos_token": "<|endoftext|>"})
    )
    student = load_student_tokenizer(slow)
    fast = load_student_tokenizer(trained)
    text = "Determinants decide invertibility."
    assert (
        student.tokenizer.encode(text, add_special_tokens=False).ids
        == fast.tokenizer.encode(text, add_special_tokens=False).ids
    )
    assert student.eos_id == 0


def test_the_tokenizer_options_default_to_tokenizer_config():
    import argparse

    from tpt.core.configs import drift
    from tpt.tokenizer import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    fields = {"fields": lambda s: tuple(f.strip() for f in s.split(",") if f.strip())}
    assert drift(sub.choices["train"], TokenizerConfig, convert=fields) == []


def test_run_returns_a_typed_summary(tmp_path: Path) -> None:
    summary = run(TokenizerConfig(corpus=[CORPUS], output=tmp_path / "tok", vocab_size=300, max_records=5))
    assert (summary.output, summary.records, summary.skipped_lines, summary.vocab_size) == (
        tmp_path / "tok",
        5,
        0,
        300,
    )
    assert summary.characters > 0 and summary.to_json()["output"] == str(tmp_path / "tok")
