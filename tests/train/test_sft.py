"""`tpt sft`: assistant-only loss masks, packing without cross-example attention, RoPE base scaling,
and a tiny student fine-tuned on GSM8K train problems with their worked solutions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tpt.cli import main
from tpt.core.errors import InputError
from tpt.sft.data import (
    CHATML_TEMPLATE,
    SftRows,
    _pack_next_fit,
    encode_conversation,
    gsm8k_messages,
    read_conversations,
)
from tpt.train.data import IGNORE_INDEX

GSM8K = Path(__file__).resolve().parents[2] / "src" / "tpt" / "data" / "eval" / "gsm8k" / "train.jsonl"


@pytest.fixture(scope="module")
def tokenizer(bpe_student: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bpe_student)


def test_only_assistant_turns_and_their_end_marker_are_trained_on(tokenizer) -> None:
    chat = [
        {"role": "user", "content": "What is 2+3?"},
        {"role": "assistant", "content": "2+3 = 5"},
        {"role": "user", "content": "And 4+4?"},
        {"role": "assistant", "content": "#### 8"},
    ]
    ex = encode_conversation(chat, tokenizer, CHATML_TEMPLATE)
    assert tokenizer.decode(ex.ids) == (
        "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n2+3 = 5<|im_end|>\n"
        "<|im_start|>user\nAnd 4+4?<|im_end|>\n<|im_start|>assistant\n#### 8<|im_end|>\n"
    )
    trained = [i for i, keep in zip(ex.ids, ex.assistant, strict=True) if keep]
    assert tokenizer.decode(trained) == "2+3 = 5<|im_end|>\n#### 8<|im_end|>\n"


def test_gsm8k_records_become_chats_without_calculator_annotations(tmp_path: Path) -> None:
    [(chat, fmt)] = list(read_conversations([GSM8K], max_examples=1))
    assert fmt == "question_answer"
    assert chat[1]["content"] == (
        "Natalia sold 48/2 = 24 clips in May.\n"
        "Natalia sold 48+24 = 72 clips altogether in April and May.\n#### 72"
    )
    assert gsm8k_messages(" q ", "a <<1+1=2>>2") == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a 2"},
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: no assistant turn"):
        list(read_conversations([bad]))


def test_next_fit_packing_and_row_targets() -> None:
    assert _pack_next_fit([5, 4, 3, 6, 11], 10) == [[0, 1], [2, 3]]  # 11 > 10 is left out
    from tpt.sft.data import EncodedExample

    a = EncodedExample(ids=[10, 11, 12], assistant=[False, True, True])
    b = EncodedExample(ids=[20, 21], assistant=[True, True])
    rows = SftRows([a, b], seq_len=7, pad_id=0, vocab_size=30)
    batch = rows.batch(np.array([0]))
    assert batch.input_ids.tolist() == [[10, 11, 12, 20, 21, 0, 0]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1, 0, 1]]
    # 10->11, 11->12 trained; 12->20 crosses into b: never; 20->21 trained; pads never.
    I = IGNORE_INDEX  # noqa: E741
    assert batch.targets.tolist() == [[11, 12, I, 21, I, I, I]]


def test_packed_examples_do_not_attend_to_each_other(bpe_student: Path, tokenizer) -> None:
    """The logits of an example packed after another equal its logits alone; with plain positions
    (one causal sequence) they differ, so the check can fail."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(bpe_student, dtype=torch.float32, attn_implementation="sdpa")
    chats = [
        gsm8k_messages(r["question"], r["answer"])
        for r in map(json.loads, GSM8K.read_text().splitlines()[:2])
    ]
    a, b = (encode_conversation(c, tokenizer, CHATML_TEMPLATE) for c in chats)
    rows = SftRows([a, b], seq_len=len(a.ids) + len(b.ids) + 3, pad_id=0, vocab_size=len(tokenizer))
    assert rows.num_rows == 1
    batch = rows.batch(np.array([0]))
    ids, pos = torch.from_numpy(batch.input_ids), torch.from_numpy(batch.position_ids)
    n, m = len(a.ids), len(b.ids)
    with torch.no_grad():
        # use_cache=False as in training: with a KV cache transformers ignores packed position ids.
        packed = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0, n : n + m]
        alone = model(input_ids=torch.tensor([b.ids]), use_cache=False).logits[0]
        leaky = model(input_ids=ids, use_cache=False).logits[0, n : n + m]
    assert torch.allclose(packed, alone, atol=1e-4)
    assert not torch.allclose(leaky, alone, atol=1e-2)


@pytest.mark.slow
def test_sft_on_gsm8k_train_problems(bpe_student: Path, tmp_path: Path) -> None:
    """A tiny student fine-tuned on GSM8K train problems: the assistant loss falls, the RoPE base is
    scaled x16 in the saved config, and the checkpoint generates a reply to a templated question."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "sft"
    argv = [
        "sft",
        str(GSM8K),
        "--init",
        str(bpe_student),
        "--output",
        str(run),
        "--max-examples",
        "24",
        "--seq-len",
        "512",
        "--rope-theta-scale",
        "16",
        "--preset",
        "testbed",
        "--batch-tokens",
        "1024",
        "--epochs",
        "2",
        "--warmup-steps",
        "2",
        "--log-every",
        "3",
        "--threads",
        "2",
    ]
    assert main(argv) == 0
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["loss"] < metrics[0]["loss"] - 0.5
    assert metrics[-1]["loss_assistant"] == pytest.approx(metrics[-1]["loss"])
    prepared = json.loads((run / "manifest.json").read_text())["config"]["prepared"]
    assert prepared["by_format"] == {"question_answer": 24} and prepared["examples"] == 24

    [final] = sorted((run / "checkpoints").iterdir())[-1:]
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.config.rope_parameters["rope_theta"] == 160_000.0
    assert model.config.max_position_embeddings == 512
    tok = AutoTokenizer.from_pretrained(final)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Tom has 3 apples. How many?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    assert torch.isfinite(model(**prompt).logits).all()
    assert main(argv) == 0  # the finished run is recognised, not retrained


def test_sft_from_python_returns_a_summary(bpe_student: Path, tmp_path: Path) -> None:
    """sft.stage.run(SftConfig): two steps on four GSM8K examples, a TrainSummary back."""
    from tpt.sft.config import SftConfig
    from tpt.sft.stage import run
    from tpt.train.config import testbed

    config = SftConfig(
        data=[GSM8K],
        init=str(bpe_student),
        output=tmp_path / "sft",
        preset=testbed().override(batch_tokens=256, warmup_steps=0),
        max_examples=4,
        seq_len=128,
        tokens=512,
        threads=1,
    )
    summary = run(config)
    assert (summary.stage, summary.steps, summary.tokens_seen) == ("sft", 2, 512)
    assert summary.final_checkpoint == tmp_path / "sft" / "checkpoints" / "tokens-000000000512"
