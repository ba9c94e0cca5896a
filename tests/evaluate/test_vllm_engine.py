"""The vLLM engine against a fake `vllm` module (vLLM needs a GPU; this checks the calls and the mapping).

The fake records the LLM(...) and SamplingParams(...) arguments and returns canned outputs shaped like
vLLM's RequestOutput / CompletionOutput. A real run needs `pip install vllm` on a GPU machine.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from tpt.core.errors import MissingDependencyError
from tpt.evaluate.engine import GenParams, build_engine


def _fake_vllm(calls: dict) -> types.ModuleType:
    mod = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kwargs):
            calls["sampling"] = kwargs
            self.n = kwargs["n"]

    class LLM:
        def __init__(self, **kwargs):
            calls["llm"] = kwargs

        def generate(self, prompts, sampling, use_tqdm=True):
            calls["prompts"] = prompts
            outs = []
            for i, _ in enumerate(prompts):
                completions = [
                    types.SimpleNamespace(
                        text=f" {i} x 2 = {2 * i} .",
                        token_ids=[1] * 5,
                        finish_reason="stop",
                        stop_reason="</think>",
                    ),
                    types.SimpleNamespace(
                        text=f" {i}", token_ids=[1, 2], finish_reason="stop", stop_reason=None
                    ),
                    types.SimpleNamespace(
                        text=" so on and on",
                        token_ids=[1] * 9,
                        finish_reason="length",
                        stop_reason=None,
                    ),
                ][: sampling.n]
                outs.append(types.SimpleNamespace(outputs=completions))
            return outs

    mod.LLM, mod.SamplingParams = LLM, SamplingParams
    return mod


def test_vllm_engine_maps_params_and_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm(calls))
    engine = build_engine("vllm", tmp_path, dtype="bfloat16", seed=3)
    assert calls["llm"] == {"model": str(tmp_path), "dtype": "bfloat16", "seed": 3}
    params = GenParams(max_new_tokens=64, stop=("</think>",), temperature=0.6, top_p=0.95, samples=3, seed=3)
    out = engine.generate(["a <think>", "b <think>"], params)
    assert calls["sampling"] == {
        "n": 3, "temperature": 0.6, "top_p": 0.95, "max_tokens": 64, "stop": ["</think>"], "seed": 3
    }  # fmt: skip
    assert calls["prompts"] == ["a <think>", "b <think>"]
    assert [[c.finish_reason for c in row] for row in out] == [["stop", "eos", "length"]] * 2
    assert out[1][0].text == " 1 x 2 = 2 ." and out[1][0].num_tokens == 5


def test_vllm_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(MissingDependencyError, match="--engine vllm needs the package 'vllm'"):
        build_engine("vllm", tmp_path)


def test_vllm_rows_through_evaluate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, problems_file: Path, tiny_model_dir: Path
) -> None:
    """The scoring path is engine-independent: the fake's canned " {i}" answers are scored like hf's."""
    from tpt.evaluate.spec import DataSource, TaskSpec
    from tpt.evaluate.stage import EvalConfig, run

    calls: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm(calls))
    task = TaskSpec(
        name="t",
        data=DataSource(path=str(problems_file)),
        prompt="{question}",
        metrics=(("accuracy", "last_number"),),
    )
    rows = run(EvalConfig(models=[str(tiny_model_dir)], tasks=[task], engine="vllm", limit=3), log=None).rows
    row = next(r for r in rows if r["metric"] == "accuracy")
    assert row["config"]["engine"] == "vllm" and row["value"] == 0.0  # " 0 x 2 = 0 ." is not 12 + ...


def test_vllm_engine_encodes_a_tpt_checkpoint_by_its_bos_convention(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    calls: dict = {}
    fake = _fake_vllm(calls)

    class Tokenizer:
        def __call__(self, texts, add_special_tokens=True):
            assert add_special_tokens is False  # the convention decides, not the tokenizer's default
            return {"input_ids": [[len(t), 7] for t in texts]}

    fake.LLM.get_tokenizer = lambda self: Tokenizer()
    monkeypatch.setitem(sys.modules, "vllm", fake)
    (tmp_path / "tpt_checkpoint.json").write_text(json.dumps({"bos_id": 5}))
    engine = build_engine("vllm", tmp_path)
    engine.generate(["ab", "abc"], GenParams(max_new_tokens=4))
    assert calls["prompts"] == [{"prompt_token_ids": [5, 2, 7]}, {"prompt_token_ids": [5, 3, 7]}]
