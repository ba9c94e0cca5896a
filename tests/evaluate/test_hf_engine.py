"""Batched generation: same tokens as transformers' own greedy generate, batched or not, with per-row stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpt.core.errors import ConfigError, InputError
from tpt.evaluate.engine import GenParams, build_engine
from tpt.evaluate.hf_engine import HFEngine, resolve_dtype

PROMPTS = [
    "dan has 5 bags with 5 pens each and 2 loose pens . how many pens does dan have ? <think>",
    "amy has 4 bags",
    "bob has 6 bags with 3 hats each and 4 loose hats . how many hats does bob have ? =",
    "eve",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> HFEngine:
    return HFEngine(tiny_model_dir, dtype="float32", batch_size=4)


@pytest.fixture(scope="module")
def trained(trained_model_dir: Path) -> HFEngine:
    return HFEngine(trained_model_dir, dtype="float32", batch_size=8)


def test_tokenizer_without_pad_uses_eos(tiny: HFEngine) -> None:
    assert tiny.tokenizer.pad_token_id is None
    assert tiny.pad_id == tiny.tokenizer.eos_token_id
    assert tiny.eos_ids == {tiny.tokenizer.eos_token_id}


def test_greedy_matches_transformers_generate(tiny: HFEngine) -> None:
    """Left padding, masks and positions must not change a row's greedy continuation."""
    import torch

    tok, model = tiny.tokenizer, tiny.model
    params = GenParams(max_new_tokens=12)
    batched = tiny.generate(PROMPTS, params)
    for prompt, [ours] in zip(PROMPTS, batched, strict=True):
        ids = tok(prompt, return_tensors="pt")
        with torch.inference_mode():
            ref = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.eos_token_id)
        new = ref[0, ids["input_ids"].shape[1] :].tolist()
        if tok.eos_token_id in new:
            new = new[: new.index(tok.eos_token_id)]
        assert ours.text == tok.decode(new, skip_special_tokens=False)
        assert ours.num_tokens == len(new)
    one_by_one = HFEngine(tiny.path, dtype="float32", batch_size=1).generate(PROMPTS, params)
    assert one_by_one == batched


def test_per_row_stops_and_finish_reasons(trained: HFEngine) -> None:
    prompts = [
        "dan has 5 bags with 5 pens each and 2 loose pens . how many pens does dan have ? <think>",
        "dan has 5 bags with 5 pens each and 2 loose pens . how many pens does dan have ? =",
    ]
    [think], [direct] = trained.generate(prompts, GenParams(max_new_tokens=40, stop=("</think>", " .")))
    assert direct.text == " 27" and direct.finish_reason == "stop"
    assert think.text == " 5 x 5 = 25" and think.finish_reason == "stop"  # " ." stops it early
    [[full]] = trained.generate(prompts[:1], GenParams(max_new_tokens=40, stop=("</think>",)))
    assert full.text == " 5 x 5 = 25 . 25 + 2 = 27 . so 27 " and full.finish_reason == "stop"
    [[cut]] = trained.generate(prompts[:1], GenParams(max_new_tokens=3))
    assert cut.num_tokens == 3 and cut.finish_reason == "length"
    [[eos]] = trained.generate(prompts[:1], GenParams(max_new_tokens=40))
    assert eos.finish_reason == "eos" and eos.text.endswith("</think>")


def test_sampling_is_seeded_and_gives_samples(tiny: HFEngine) -> None:
    params = GenParams(max_new_tokens=8, temperature=1.0, top_p=0.9, samples=3, seed=7)
    a = tiny.generate(PROMPTS[:2], params)
    b = tiny.generate(PROMPTS[:2], params)
    assert a == b
    assert [len(row) for row in a] == [3, 3]
    assert len({c.text for c in a[0]}) > 1  # a random model at T=1 does not repeat itself 3 times


def test_bad_generation_settings() -> None:
    with pytest.raises(ConfigError, match="samples > 1 needs sampling"):
        GenParams(max_new_tokens=4, samples=4)
    with pytest.raises(ConfigError, match="top_p"):
        GenParams(max_new_tokens=4, top_p=0)
    with pytest.raises(ConfigError, match="unknown engine 'vlm'"):
        build_engine("vlm", Path("."))


def test_model_dir_that_does_not_load(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama", "vocab_size": 10}')
    with pytest.raises(InputError, match="could not load a causal LM"):
        HFEngine(tmp_path)


def test_dtype_auto_reads_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"dtype": "bfloat16"}')
    assert resolve_dtype(tmp_path, "auto") == "bfloat16"
    assert resolve_dtype(tmp_path, "float32") == "float32"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_dtype(tmp_path, "auto") == "float32"


def test_gold_loglik_equals_the_model_s_own_log_probabilities_batched_or_not(tiny: HFEngine) -> None:
    """log p(target | prompt) summed over the target's tokens, the same whatever the batch's padding."""
    import torch

    targets = [" 1 2 .", " dan", " 7", " has 4"]
    got = tiny.loglik(PROMPTS, targets)
    for prompt, target, value in zip(PROMPTS, targets, got, strict=True):
        ctx = tiny.encode([prompt])[0]
        cont = tiny.tokenizer(target, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = tiny.model(input_ids=torch.tensor([ctx + cont])).logits[0]
        lp = torch.log_softmax(logits.float(), -1)
        want = sum(lp[len(ctx) + k - 1, t].item() for k, t in enumerate(cont))
        assert value == pytest.approx(want, abs=1e-4) and value < 0
    one = HFEngine(tiny.path, dtype="float32", batch_size=1)
    assert one.loglik(PROMPTS, targets) == pytest.approx(got, abs=1e-4)


def test_a_task_with_loglik_target_reports_gold_loglik(tmp_path: Path, tiny_model_dir: Path) -> None:
    import json

    from tpt.evaluate.stage import EvalConfig, run
    from tpt.evaluate.taskfile import load_task_file

    data = tmp_path / "q.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": str(i), "question": f"dan has {i} bags", "answer": str(i)}) + "\n"
            for i in range(3)
        )
    )
    (tmp_path / "t.json").write_text(
        json.dumps(
            {
                "name": "ll",
                "data": str(data),
                "prompt": "{question} =",
                "extract": "last_number",
                "max_new_tokens": 2,
                "loglik_target": " {answer} .",
            }
        )
    )
    [task] = load_task_file(tmp_path / "t.json")
    out = tmp_path / "r.jsonl"
    rows = run(EvalConfig(models=[str(tiny_model_dir)], tasks=[task], output=out, threads=1)).rows
    [ll] = [r for r in rows if r["metric"] == "gold_loglik"]
    samples = [json.loads(x) for x in out.with_name("r.samples.jsonl").read_text().splitlines()]
    assert ll["value"] == pytest.approx(sum(s["gold_loglik"] for s in samples) / 3) and ll["value"] < 0
