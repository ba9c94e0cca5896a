"""The loop guard in the vllm backend: each step's new tokens (RequestOutputKind.DELTA) are watched and a
looping request is aborted through the engine, freeing its slot. Against a fake engine built on the
fake `vllm` module of test_vllm_backend.py, which here generates one token per request per step: a
request whose prompt says LOOP walks PATH new tokens then cycles through CYCLE tokens until max_tokens;
any other walks PATH tokens and ends (EOS)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

# The fake vllm module's classes and fixtures, from its own test file (tests are not a package).
_spec = importlib.util.spec_from_file_location("_fake_vllm", Path(__file__).with_name("test_vllm_backend.py"))
_fake = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("_fake_vllm", _fake)  # dataclasses look their module up there
_spec.loader.exec_module(_fake)
CompletionOutput, FakeSamplingParams, RequestOutput = (
    _fake.CompletionOutput,
    _fake.FakeSamplingParams,
    _fake.RequestOutput,
)
RequestOutputKind, options, req = _fake.RequestOutputKind, _fake.options, _fake.req
model_dir, tokenizer = _fake.model_dir, _fake.tokenizer  # fixtures

from tpt.augment.backends import vllm_backend  # noqa: E402
from tpt.augment.backends.base import SamplingParams  # noqa: E402
from tpt.augment.loopguard import LoopGuardOptions  # noqa: E402

PATH, CYCLE = 40, 5
GUARD = LoopGuardOptions(ngram=4, window=32, threshold=0.7)
OFF = LoopGuardOptions(enabled=False)


@dataclass
class _Run:
    prompt_ids: list[int]
    params: FakeSamplingParams
    loops: bool
    generated: list[int] = field(default_factory=list)


@dataclass
class StepEngine:
    """One token per running request per step, like a real engine's decode step."""

    tokenizer: Any
    max_num_seqs: int = 8
    running: dict[str, _Run] = field(default_factory=dict)
    aborted: list[str] = field(default_factory=list)
    kinds: list[Any] = field(default_factory=list)
    produced: int = 0

    def __post_init__(self) -> None:
        self.model_config = types.SimpleNamespace(max_model_len=4096)
        self.vllm_config = types.SimpleNamespace(
            scheduler_config=types.SimpleNamespace(max_num_seqs=self.max_num_seqs)
        )

    def add_request(self, request_id: str, prompt: dict, params: FakeSamplingParams) -> None:
        ids = prompt["prompt_token_ids"]
        self.kinds.append(params.output_kind)
        self.running[request_id] = _Run(ids, params, loops="LOOP" in self.tokenizer.decode(ids))

    def has_unfinished_requests(self) -> bool:
        return bool(self.running)

    def abort_request(self, request_ids: list[str]) -> None:
        self.aborted += request_ids
        for rid in request_ids:
            self.running.pop(rid, None)

    def step(self) -> list[RequestOutput]:
        outputs = []
        for rid, run in list(self.running.items())[: self.max_num_seqs]:
            n = len(run.generated)
            token = 1000 + n if n < PATH else (2000 + (n - PATH) % CYCLE if run.loops else 2)
            run.generated.append(token)
            self.produced += 1
            finish = None
            if token == 2:
                finish = "stop"
            elif len(run.generated) >= run.params.max_tokens:
                finish = "length"
            ids = run.generated if finish != "stop" else run.generated[:-1]
            if finish:
                del self.running[rid]
            if run.params.output_kind is RequestOutputKind.DELTA:
                new = [token] if token != 2 else []
                completion = CompletionOutput(0, self.tokenizer.decode(new), new, finish)
            elif finish:
                completion = CompletionOutput(0, self.tokenizer.decode(ids), list(ids), finish)
            else:
                continue  # FINAL_ONLY: nothing until it finishes
            outputs.append(RequestOutput(rid, run.prompt_ids, [completion], finished=finish is not None))
        return outputs


@pytest.fixture
def step_vllm(monkeypatch, tokenizer):  # noqa: F811
    engines: list[StepEngine] = []

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            self.llm_engine = StepEngine(tokenizer, kwargs.get("max_num_seqs", 8))
            engines.append(self.llm_engine)

        def get_tokenizer(self) -> Any:
            return tokenizer

    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = LLM, FakeSamplingParams
    sampling_module = types.ModuleType("vllm.sampling_params")
    sampling_module.RequestOutputKind = RequestOutputKind
    module.sampling_params = sampling_module
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling_module)
    return engines


def _run(step_vllm, model_dir, guard, requests, **engine):  # noqa: F811
    backend = vllm_backend.build(options(model_dir, engine_args=engine))
    results = {
        r.key: r for r in backend.generate(iter(requests), SamplingParams(max_tokens=400, loop_guard=guard))
    }
    return results, step_vllm[-1]


def test_a_looping_request_is_aborted_where_the_guard_fires(step_vllm, model_dir, tokenizer):  # noqa: F811
    requests = [req(0, "LOOP please"), req(1, "a clean one")]
    off, engine_off = _run(step_vllm, model_dir, OFF, requests)
    on, engine_on = _run(step_vllm, model_dir, GUARD, requests)
    assert set(engine_off.kinds) == {RequestOutputKind.FINAL_ONLY}
    assert set(engine_on.kinds) == {RequestOutputKind.DELTA}
    assert off[0].finish_reason == "length" and off[0].completion_tokens == 400
    looped = on[0]
    assert (looped.finish_reason, looped.stop) == ("repetition", "loop_guard")
    assert engine_on.aborted == ["tpt-0"]  # through the engine, at once
    assert PATH < looped.completion_tokens <= PATH + GUARD.window + GUARD.ngram
    assert looped.loop_start == PATH
    assert looped.text == tokenizer.decode([1000 + i for i in range(PATH)], skip_special_tokens=True)
    # the clean request reads the same in deltas as in one final output
    assert on[1] == off[1] and on[1].finish_reason == "stop" and on[1].completion_tokens == PATH
    assert engine_on.produced < 0.4 * engine_off.produced


def test_the_aborted_requests_slot_goes_to_the_next(step_vllm, model_dir):  # noqa: F811
    requests = [req(i, f"LOOP number {i}") for i in range(3)] + [req(3, "clean")]
    on, engine = _run(step_vllm, model_dir, GUARD, requests, max_num_seqs=1)
    assert [on[i].finish_reason for i in range(4)] == ["repetition"] * 3 + ["stop"]
    assert engine.aborted == ["tpt-0", "tpt-1", "tpt-2"]
    # nothing ran on after the aborts (+ 1: the clean one's end-of-sequence token, not counted)
    assert engine.produced == sum(r.completion_tokens for r in on.values()) + 1


def test_penalties_are_passed_to_vllm_sampling_params(step_vllm, model_dir, monkeypatch):  # noqa: F811
    seen = []
    original = FakeSamplingParams.__init__

    def spy(self, **kw):
        seen.append(kw)
        original(self, **kw)

    monkeypatch.setattr(FakeSamplingParams, "__init__", spy)
    backend = vllm_backend.build(options(model_dir))
    sampling = SamplingParams(
        max_tokens=50, repetition_penalty=1.15, frequency_penalty=0.2, presence_penalty=0.1
    )
    list(backend.generate(iter([req(0, "clean")]), sampling))
    assert (seen[0]["repetition_penalty"], seen[0]["frequency_penalty"], seen[0]["presence_penalty"]) == (
        1.15,
        0.2,
        0.1,
    )
