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
    assert (
        main(["tokenizer", "train", str(CORPUS), "--vocab-size", "1000", "--output", str(out)]) == 0
    )
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
                thinking = "Let me think this through. " + " ".join(
                    reversed(doc["text"].split(". "))
                )
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
        first["text"].rstrip()
        + "\n\n<think>\n"
        + first["thinking"].strip()
        + "\n</think><|endoftext|>"
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
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "0 []"
