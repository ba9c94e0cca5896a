"""Fixtures for the `tpt eval` tests: arithmetic problems, a tiny tokenizer, tiny Llama students, a RUN_DIR.

`tiny_model_dir` is a randomly initialised 2-layer LlamaForCausalLM (mechanics only). `trained_model_dir`
is the same shape trained for a few seconds to answer the fixture's problems: "Q <think> derivation
</think>" and "Q = answer ." so that end-to-end scores are real and known (not 0 by accident).
Neither tokenizer has a pad token, as with the reproduction's students.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from tpt.formats.checkpoint import CHECKPOINTS, STATE_FILE, checkpoint_name

NAMES = ("dan", "amy", "bob", "eve")
ITEMS = ("pens", "cards", "cups", "hats")


def make_problems(n: int = 12, seed: int = 0) -> list[dict]:
    """Word problems like the reproduction's testbed, with an integer answer and a derivation."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c = rng.randint(2, 7), rng.randint(2, 7), rng.randint(2, 7)
        name, item = NAMES[i % 4], ITEMS[(i // 4) % 4]
        q = f"{name} has {a} bags with {b} {item} each and {c} loose {item} . how many {item} does {name} have ?"
        think = f"{a} x {b} = {a * b} . {a * b} + {c} = {a * b + c} ."
        out.append({"id": f"p{i}", "question": q, "answer": a * b + c, "thinking": think})
    return out


@pytest.fixture(scope="session")
def problems() -> list[dict]:
    return make_problems()


@pytest.fixture(scope="session")
def problems_file(tmp_path_factory: pytest.TempPathFactory, problems: list[dict]) -> Path:
    path = tmp_path_factory.mktemp("data") / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in problems), encoding="utf-8")
    return path


def _training_texts(problems: list[dict]) -> list[str]:
    texts = []
    for p in problems:
        texts.append(f"{p['question']} = {p['answer']} .")
        texts.append(f"{p['question']} <think> {p['thinking']} so {p['answer']} </think>")
    return texts


def _tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")


def _model(vocab_size: int, eos_id: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=eos_id,
        bos_token_id=None,
        pad_token_id=None,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, problems: list[dict]) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "model"
    tok = _tokenizer(_training_texts(problems))
    model = _model(len(tok), tok.eos_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory, problems: list[dict]) -> Path:
    """A tiny model that has memorised the problems in both formats (~5 s of training on CPU)."""
    import torch

    out = tmp_path_factory.mktemp("trained") / "model"
    texts = _training_texts(problems)
    tok = _tokenizer(texts)
    model = _model(len(tok), tok.eos_token_id, seed=1)
    rows = [tok(t)["input_ids"] + [tok.eos_token_id] for t in texts]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.eos_token_id)
    labels = torch.full((len(rows), width), -100)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, : len(r)] = torch.tensor(r)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains faster on one thread, and the CPU is shared
    model.train()
    for _ in range(300):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.05:
            break
    model.eval()
    torch.set_num_threads(threads)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture()
def run_dir(tmp_path: Path, tiny_model_dir: Path, trained_model_dir: Path) -> Path:
    """A training output directory with two checkpoints, as `tpt train` writes them."""
    run = tmp_path / "run"
    for tokens, step, src in ((1024, 4, tiny_model_dir), (4096, 16, trained_model_dir)):
        ck = run / CHECKPOINTS / checkpoint_name(tokens)
        shutil.copytree(src, ck)
        (ck / STATE_FILE).write_text(json.dumps({"tokens_seen": tokens, "step": step}))
    (run / CHECKPOINTS / f".{checkpoint_name(9999)}.tmp-1").mkdir()  # a checkpoint being written: ignored
    return run
