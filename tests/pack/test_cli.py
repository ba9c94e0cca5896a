"""`tpt pack` from the command line, with a trained byte-level BPE: the exact text of a sample."""

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from tpt.cli import main

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))


@pytest.fixture(scope="module")
def bpe(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bpe") / "tok"
    assert main(["tokenizer", "train", str(CORPUS), "--vocab-size", "1000", "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def augmented(tmp_path_factory) -> Path:
    """The sample corpus with a synthetic trajectory per document (its sentences reversed)."""
    out = tmp_path_factory.mktemp("aug") / "shards"
    out.mkdir()
    with open(out / "part-00000000.jsonl", "w", encoding="utf-8") as f:
        for path in sorted(CORPUS.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                doc = json.loads(line)
                thinking = "Let me think this through. " + " ".join(reversed(doc["text"].split(". ")))
                f.write(
                    json.dumps(
                        {
                            "id": doc["id"],
                            "text": doc["text"],
                            "thinking": "\n" + thinking + "\n",
                            "finish_reason": "stop",
                            "source": doc["source"],
                        }
                    )
                    + "\n"
                )
    return out.parent


def test_cli_pack_writes_the_documented_sample_text(tmp_path, bpe, augmented, capsys):
    out = tmp_path / "packed"
    # The synthetic thinking restates the document: the copy check is off for this corpus, and one
    # document (a list of near-identical exercises) repeats 37% of its 10-grams.
    assert (
        main(
            [
                "pack",
                str(augmented),
                "--output",
                str(out),
                "--tokenizer",
                str(bpe),
                "--seq-len",
                "256",
                "--shuffle-buffer",
                "0",
                "--disable-check",
                "copy",
                "--max-repetition",
                "0.5",
            ]
        )
        == 0
    )
    assert "48 records -> 48 samples" in capsys.readouterr().out
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out / "tokenizer" / "tokenizer.json"))
    tokens = np.load(out / "shard-00000.tokens.npy").ravel()
    kinds = np.load(out / "shard-00000.kinds.npy").ravel()
    eos = json.loads((out / "index.json").read_text())["eos_id"]
    first_end = int(np.flatnonzero((tokens == eos) & (kinds == 3))[0])
    first = json.loads((augmented / "shards" / "part-00000000.jsonl").read_text().splitlines()[0])
    expected = (
        first["text"].rstrip() + "\n\n<think>\n" + first["thinking"].strip() + "\n</think><|endoftext|>"
    )
    assert tok.decode(tokens[: first_end + 1].tolist(), skip_special_tokens=False) == expected
    doc_ids = tokens[: first_end + 1][kinds[: first_end + 1] == 1]
    assert tok.decode(doc_ids.tolist()) == first["text"].rstrip()


def test_cli_errors_exit_2_with_a_message(tmp_path, bpe, augmented, capsys):
    assert (
        main(
            [
                "pack",
                str(augmented),
                "--output",
                str(tmp_path / "o"),
                "--tokenizer",
                str(tmp_path / "none"),
                "--seq-len",
                "64",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "pack",
                str(augmented),
                "--output",
                str(tmp_path / "o"),
                "--tokenizer",
                str(bpe),
                "--seq-len",
                "64",
                "--weights",
                "wikitext=lots",
            ]
        )
        == 2
    )
    assert "SOURCE=WEIGHT" in capsys.readouterr().err


def test_pack_keeps_torch_and_transformers_out_of_the_process(tmp_path, bpe, augmented):
    code = (
        "import sys; from tpt.cli import main; "
        f"rc = main(['pack', {str(augmented)!r}, '--output', {str(tmp_path / 'o')!r}, "
        f"'--tokenizer', {str(bpe)!r}, "
        "'--seq-len', '128', '--mode', 'raw']); "
        "print(rc, sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"


def _filter_corpus(path: Path) -> Path:
    """Two sources: 'math' with 2 of 4 trajectories cut by the length limit, 'web' with one short
    trajectory, one contaminated document and one trajectory that leaks a control token among 5 (and a
    document that quotes one, which is data and packed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gsm8k = resources.files("tpt").joinpath("data/eval/gsm8k/test.jsonl")
    question = json.loads(gsm8k.read_text(encoding="utf-8").splitlines()[0])["question"]
    thinking = " ".join(f"step {i} follows from the one before it because of the rule" for i in range(4))
    rows = []
    for i in range(4):
        rows.append(
            {
                "id": f"m{i}",
                "text": f"Problem {i}: add the numbers.",
                "thinking": thinking,
                "finish_reason": "length" if i < 2 else "stop",
                "source": "math",
            }
        )
    for i, (text, think) in enumerate(
        [
            ("A page about rivers.", thinking),
            ("A page about hills.", "Too short."),
            ("A page that quotes " + question, thinking),
            ("A page about lakes that quotes <|endoftext|> and <|im_end|>.", thinking),
            ("A page about ponds.", thinking + " <|im_end|>"),
        ]
    ):
        rows.append(
            {"id": f"w{i}", "text": text, "thinking": think, "finish_reason": "stop", "source": "web"}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_drops_are_reported_per_source_and_reason_and_the_paper_setting_keeps_them(tmp_path, bpe, capsys):
    records = _filter_corpus(tmp_path / "in" / "records.jsonl")
    args = ["pack", str(records), "--tokenizer", str(bpe), "--seq-len", "64", "--workers", "0"]
    assert main([*args, "--output", str(tmp_path / "default")]) == 0
    line = capsys.readouterr().out
    stats = json.loads((tmp_path / "default" / "stats.json").read_text())
    assert stats["skipped"] == {"contamination": 1, "leaked_control": 1, "too_short": 1, "truncated": 2}
    share = stats["dropped_share"]
    assert share["all"] == pytest.approx(5 / 9) and share["by_reason"]["truncated"] == pytest.approx(2 / 9)
    assert share["by_source"]["math"] == {"all": 0.5, "by_reason": {"truncated": 0.5}}
    assert share["by_source"]["web"]["all"] == pytest.approx(0.6)
    assert stats["by_source"]["web"]["skipped_by_reason"] == {
        "contamination": 1,
        "leaked_control": 1,
        "too_short": 1,
    }
    assert "5 of 9 records dropped (55.6%: " in line and "truncated 2 (22.2%)" in line
    assert "by source: web 60.0%, math 50.0%" in line
    # The paper filters nothing: every record is packed; the contaminated document is reported.
    assert main([*args, "--output", str(tmp_path / "paper"), "--paper-faithful"]) == 0
    line = capsys.readouterr().out
    stats = json.loads((tmp_path / "paper" / "stats.json").read_text())
    assert stats["skipped"] == {} and stats["augmented_samples"] == 9
    assert stats["flagged"] == {"contamination": 1}
    assert stats["by_source"]["web"]["flagged"] == {"contamination": 1}
    [flagged] = [json.loads(x) for x in (tmp_path / "paper" / "flagged.jsonl").read_text().splitlines()]
    assert (flagged["id"], flagged["reason"]) == ("w2", "contamination")
    assert "flagged, packed: contamination 1" in line
    assert stats["validation"]["report_only"] == ["contamination"]


@pytest.mark.parametrize("mode", ["tpt", "raw"])
def test_a_documents_control_strings_are_text_to_the_student(tmp_path, bpe, mode):
    """Before: the document's `<|endoftext|>` became the EOS id mid-sample (and the record was
    dropped as leaked_control from both arms). Now it is packed, encoded as the characters it is."""
    src = tmp_path / "in.jsonl"
    thinking = " ".join(f"step {i} follows from the one before it because of the rule" for i in range(4))
    doc = "A forum post ends with <|endoftext|> and then says <think> more."
    src.write_text(json.dumps({"id": 1, "text": doc, "thinking": thinking, "finish_reason": "stop"}) + "\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "pack",
                str(src),
                "--tokenizer",
                str(bpe),
                "--seq-len",
                "128",
                "--workers",
                "0",
                "--mode",
                mode,
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    stats = json.loads((out / "stats.json").read_text())
    assert stats["skipped"] == {} and stats["documents"] == 1
    index = json.loads((out / "index.json").read_text())
    tokens = np.load(out / "shard-00000.tokens.npy")[0]
    kinds = np.load(out / "shard-00000.kinds.npy")[0]
    document = tokens[kinds == 1]
    assert index["eos_id"] not in document.tolist()
    from tokenizers import Tokenizer

    assert Tokenizer.from_file(str(out / "tokenizer" / "tokenizer.json")).decode(document.tolist()) == doc
