"""One BOS convention from pack to eval, with a tokenizer that adds BOS (as Llama 3's does): packed samples
start with BOS exactly when evaluation prompts do, and the checkpoint records which."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tpt.cli import main

WORDS = ["<pad>", "<s>", "</s>", "[UNK]", "the", "cat", "sat", "so", "fast", "<think>", "</think>"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("bos")
    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<pad>", "<s>", "</s>"])
    # What Llama 3's tokenizer does: encoding with special tokens puts BOS first.
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="[UNK]"
    ).save_pretrained(root / "tok")
    records = root / "records.jsonl"
    records.write_text(
        "".join(json.dumps({"id": i, "text": "the cat sat", "thinking": "so fast"}) + "\n" for i in range(8))
    )
    return {"root": root, "tok": root / "tok", "records": records}


def pack_and_train(setup: dict[str, Path], name: str, *flags: str) -> tuple[Path, Path]:
    pack, run = setup["root"] / f"pack-{name}", setup["root"] / f"run-{name}"
    assert (
        main(
            [
                "pack",
                str(setup["records"]),
                "--output",
                str(pack),
                "--tokenizer",
                str(setup["tok"]),
                "--seq-len",
                "16",
                "--no-validate",
                "--shuffle-buffer",
                "0",
                "--workers",
                "0",
                "--no-progress",
                *flags,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                str(pack),
                "--output",
                str(run),
                "--tokens",
                "32",
                "--batch-tokens",
                "32",
                "--preset",
                "testbed",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    [ckpt] = sorted((run / "checkpoints").iterdir())
    return pack, ckpt


def test_samples_and_prompts_share_the_tokenizers_bos(setup):
    from tpt.evaluate.hf_engine import HFEngine

    pack, ckpt = pack_and_train(setup, "auto")
    index = json.loads((pack / "index.json").read_text())
    assert (index["bos_id"], index["bos_token"]) == (1, "<s>")
    tokens, kinds = (np.load(pack / f"shard-00000.{k}.npy").ravel() for k in ("tokens", "kinds"))
    # Every sample (8 of them) starts with BOS, typed as a template token: <s> the cat sat <think> ...
    assert (tokens == 1).sum() == 8 and (kinds[tokens == 1] == 3).all()
    assert tokens[:6].tolist() == [1, 4, 5, 6, 9, 7]
    assert json.loads((ckpt / "tpt_checkpoint.json").read_text())["bos_id"] == 1
    engine = HFEngine(ckpt, dtype="float32", batch_size=2)
    assert engine.encode(["the cat"]) == [[1, 4, 5]]  # once, as in training


def test_a_student_packed_without_bos_never_sees_it_at_eval(setup):
    from transformers import AutoTokenizer

    from tpt.evaluate.hf_engine import HFEngine

    pack, ckpt = pack_and_train(setup, "off", "--bos", "off")
    index = json.loads((pack / "index.json").read_text())
    assert index["bos_id"] is None and 1 not in np.load(pack / "shard-00000.tokens.npy")
    assert json.loads((ckpt / "tpt_checkpoint.json").read_text())["bos_id"] is None
    # The tokenizer's own default would put a BOS the student has never seen in front of every prompt.
    assert AutoTokenizer.from_pretrained(ckpt)("the cat")["input_ids"] == [1, 4, 5]
    assert HFEngine(ckpt, dtype="float32").encode(["the cat"]) == [[4, 5]]
    # A model that is not a tpt checkpoint keeps its tokenizer's convention (its own pre-training).
    other = setup["root"] / "other"
    shutil.copytree(ckpt, other)
    (other / "tpt_checkpoint.json").unlink()
    assert HFEngine(other, dtype="float32").encode(["the cat"]) == [[1, 4, 5]]
