"""The `vllm` backend's adapter against a fake `vllm` module (vLLM needs a GPU; there is none here).

Run: .venv/bin/python -m pytest tests/augment/test_vllm_backend.py
The fake mirrors the vLLM API the adapter uses: `LLM(**engine_args)`, `LLM.get_tokenizer()`,
`LLM.llm_engine.{add_request, step, abort_request, model_config.max_model_len}`, `SamplingParams`
with the real keyword names (an unknown one raises TypeError, as msgspec does),
`RequestOutputKind`, and `RequestOutput`/`CompletionOutput` fields. Its "model" writes words derived
from the prompt and the seed, ends with `</think>` after a prompt-dependent number of words, and
finishes requests out of order.
"""

from __future__ import annotations

import enum
import itertools
import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")

from tpt.augment.backends import vllm_backend  # noqa: E402
from tpt.augment.backends.base import GenerationRequest, SamplingParams, build_backend  # noqa: E402
from tpt.core.errors import ConfigError, MissingDependencyError  # noqa: E402

ENGINE_ARGS = {
    "model",
    "dtype",
    "seed",
    "max_model_len",
    "max_num_seqs",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "enforce_eager",
    "enable_prefix_caching",
    "tokenizer",
}


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


@dataclass(kw_only=True)
class FakeSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    max_tokens: int | None = 16
    stop: list[str] | None = None
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    seed: int | None = None
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    stop_reason: str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool


@dataclass
class _Running:
    prompt_ids: list[int]
    params: FakeSamplingParams
    steps_left: int


@dataclass
class FakeEngine:
    tokenizer: Any
    max_model_len: int
    max_num_seqs: int
    running: dict[str, _Running] = field(default_factory=dict)
    added: list[tuple[str, dict, FakeSamplingParams]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    peak: int = 0

    def __post_init__(self) -> None:
        self.model_config = types.SimpleNamespace(max_model_len=self.max_model_len)
        self.vllm_config = types.SimpleNamespace(
            scheduler_config=types.SimpleNamespace(max_num_seqs=self.max_num_seqs)
        )

    def add_request(self, request_id: str, prompt: dict, params: FakeSamplingParams) -> None:
        ids = prompt["prompt_token_ids"]
        assert isinstance(request_id, str) and request_id not in self.running
        if len(ids) > self.max_model_len:  # what vLLM's input processor does
            raise ValueError(
                f"The decoder prompt (length {len(ids)}) is longer than the maximum model length"
            )
        if "REFUSE" in self.tokenizer.decode(ids):
            raise ValueError("unsupported request")
        self.added.append((request_id, prompt, params))
        self.running[request_id] = _Running(ids, params, steps_left=1 + len(ids) % 3)
        self.peak = max(self.peak, len(self.running))

    def has_unfinished_requests(self) -> bool:
        return bool(self.running)

    def abort_request(self, request_ids: list[str]) -> None:
        self.aborted += request_ids
        for rid in request_ids:
            self.running.pop(rid, None)

    def step(self) -> list[RequestOutput]:
        done = []
        for rid, run in list(self.running.items())[: self.max_num_seqs]:
            if "DROP" in self.tokenizer.decode(run.prompt_ids):  # lost without an output
                del self.running[rid]
                continue
            run.steps_left -= 1
            if run.steps_left == 0:
                del self.running[rid]
                done.append(RequestOutput(rid, run.prompt_ids, [self._complete(run)], finished=True))
        return done

    def _complete(self, run: _Running) -> CompletionOutput:
        prompt = self.tokenizer.decode(run.prompt_ids)
        if "ABORT" in prompt:
            return CompletionOutput(0, "", [], "abort")
        words = fake_thinking(run.prompt_ids, run.params.seed).split(" ") + ["</think>", "answer"]
        words = words[: run.params.max_tokens]  # one token per word in this fake
        text = " ".join(words)
        for stop in run.params.stop or []:
            if stop in text:
                cut = text.index(stop)
                text = text[:cut] if not run.params.include_stop_str_in_output else text[: cut + len(stop)]
                return CompletionOutput(0, text, list(range(len(text[:cut].split()) + 1)), "stop", stop)
        return CompletionOutput(0, text, list(range(len(words))), "length")


def fake_thinking(prompt_ids: list[int], seed: int | None) -> str:
    n = 3 + len(prompt_ids) % 5
    return " ".join(f"w{(seed or 0) % 97}-{i}" for i in range(n))


@pytest.fixture(scope="module")
def tokenizer():
    from tpt.core.hfmodel import resolve_model_dir

    return transformers.AutoTokenizer.from_pretrained(str(resolve_model_dir(None)))


@pytest.fixture
def fake_vllm(monkeypatch, tokenizer):
    """Install a fake `vllm` (and `vllm.sampling_params`) in sys.modules; returns created LLMs."""
    created: list[Any] = []

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            unknown = set(kwargs) - ENGINE_ARGS
            if unknown:  # vLLM's EngineArgs is a dataclass: unknown keywords raise TypeError
                raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument {min(unknown)!r}")
            self.kwargs = kwargs
            self.llm_engine = FakeEngine(
                tokenizer, kwargs.get("max_model_len", 512), kwargs.get("max_num_seqs", 4)
            )
            created.append(self)

        def get_tokenizer(self) -> Any:
            return tokenizer

    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = LLM, FakeSamplingParams
    sampling_module = types.ModuleType("vllm.sampling_params")
    sampling_module.RequestOutputKind = RequestOutputKind
    sampling_module.SamplingParams = FakeSamplingParams
    module.sampling_params = sampling_module
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling_module)
    return created


@pytest.fixture
def model_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}), encoding="utf-8")
    return tmp_path


def options(model, **kw: Any) -> dict:
    base = {
        "model": str(model),
        "base_url": None,
        "api_key_env": None,
        "concurrency": None,
        "request_timeout_s": None,
        "max_retries": None,
        "tokenizer": None,
        "batch_size": 0,
        "dtype": "bfloat16",
        "device": "auto",
        "open_think": "auto",
        "engine_args": {},
        "seed": 5,
    }
    return {**base, **kw}


def req(i: int, text: str | None = None, seed: int | None = None) -> GenerationRequest:
    content = text if text is not None else "lattice " * (1 + i % 7) + f"document {i}"
    return GenerationRequest(key=i, messages=({"role": "user", "content": content},), seed=seed)


def test_engine_gets_the_model_dtype_seed_and_engine_args(fake_vllm, model_dir) -> None:
    backend = build_backend("vllm", options(model_dir, engine_args={"max_num_seqs": 6, "max_model_len": 300}))
    [llm] = fake_vllm
    assert llm.kwargs == {
        "model": str(model_dir),
        "dtype": "bfloat16",
        "seed": 5,
        "max_num_seqs": 6,
        "max_model_len": 300,
    }
    assert (backend.name, backend.model_id, backend.max_model_len) == ("vllm", str(model_dir), 300)
    assert backend.max_in_flight == 12  # two engine batches
    with pytest.raises(ConfigError, match="engine arguments"):
        vllm_backend.build(options(model_dir, engine_args={"no_such_arg": 1}))


def test_results_map_back_with_exact_prompts_and_sampling(fake_vllm, model_dir, tokenizer) -> None:
    backend = vllm_backend.build(options(model_dir))
    requests = [req(i, seed=1000 + i) for i in range(20)]
    results = list(backend.generate(iter(requests), SamplingParams(max_tokens=50)))
    engine = fake_vllm[0].llm_engine
    assert sorted(r.key for r in results) == list(range(20))
    assert [r.key for r in results] != list(range(20))  # completion order, not input order
    assert engine.peak <= backend.max_in_flight == 8
    by_id = {rid: (prompt, params) for rid, prompt, params in engine.added}
    assert len(by_id) == 20
    for _prompt, params in by_id.values():
        assert (params.temperature, params.top_p, params.max_tokens, params.n) == (0.6, 0.9, 50, 1)
        assert params.stop == ["</think>"] and not params.include_stop_str_in_output
        # the loop guard (on by default) reads each step's new tokens; off, only finished requests come
        assert params.output_kind is RequestOutputKind.DELTA
    for r in results:
        rendered = (
            tokenizer.apply_chat_template(
                list(requests[r.key].messages), tokenize=False, add_generation_prompt=True
            )
            + "<think>\n"
        )
        ids = tokenizer.encode(rendered, add_special_tokens=False)
        prompt, params = next(v for v in by_id.values() if v[0]["prompt_token_ids"] == ids)
        assert params.seed == 1000 + r.key  # the request's own seed
        assert r.error is None and r.prefilled_think and r.finish_reason == "stop"
        assert r.text == fake_thinking(ids, 1000 + r.key) + " "
        assert r.prompt_tokens == len(ids) and r.completion_tokens == len(r.text.split()) + 1


def test_length_limit_and_context_cap(fake_vllm, model_dir) -> None:
    backend = vllm_backend.build(options(model_dir, engine_args={"max_model_len": 60}))
    results = {
        r.key: r for r in backend.generate([req(0), req(1, "lattice " * 200)], SamplingParams(max_tokens=2))
    }
    assert results[0].finish_reason == "length" and results[0].completion_tokens == 2
    assert "context is 60" in results[1].error  # refused before reaching the engine
    [(_, prompt, params)] = fake_vllm[0].llm_engine.added
    assert params.max_tokens == 2
    backend2 = vllm_backend.build(options(model_dir, engine_args={"max_model_len": 50}))
    [r] = backend2.generate([req(0, "a b c")], SamplingParams(max_tokens=1000))
    [(_, prompt, params)] = fake_vllm[1].llm_engine.added
    assert params.max_tokens == 50 - len(prompt["prompt_token_ids"])  # capped where the context ends


def test_refused_and_aborted_requests_fail_alone(fake_vllm, model_dir) -> None:
    backend = vllm_backend.build(options(model_dir))
    requests = [req(0), req(1, "please REFUSE this"), req(2, "ABORT here"), req(3), req(4, "DROP")]
    results = {r.key: r for r in backend.generate(requests, SamplingParams(max_tokens=40))}
    assert "vllm refused the request" in results[1].error
    assert "'abort'" in results[2].error
    assert "without an output" in results[4].error
    assert results[0].error is None and results[3].error is None


def test_lazy_pulling_and_abort_on_early_close(fake_vllm, model_dir) -> None:
    backend = vllm_backend.build(options(model_dir))
    pulled = []

    def stream():
        for i in itertools.count():  # unbounded, like the stage's stream
            pulled.append(i)
            yield req(i, seed=i)

    gen = backend.generate(stream(), SamplingParams(max_tokens=40))
    first = [next(gen) for _ in range(3)]
    gen.close()
    engine = fake_vllm[0].llm_engine
    assert len({r.key for r in first}) == 3
    assert len(pulled) <= backend.max_in_flight + 3
    assert engine.aborted and not engine.running  # what was still in flight was aborted


def test_open_think_off_and_truncate(fake_vllm, model_dir, tokenizer) -> None:
    backend = vllm_backend.build(options(model_dir, open_think="off"))
    [r] = backend.generate([req(0)], SamplingParams(max_tokens=40))
    [(_, prompt, _)] = fake_vllm[0].llm_engine.added
    assert not r.prefilled_think
    assert not tokenizer.decode(prompt["prompt_token_ids"]).endswith("<think>\n")
    text = "Déjà vu in a lattice. " * 50
    [(kept, n, cut)] = backend.truncate([text], 20)
    assert cut and text.startswith(kept) and n == len(tokenizer.encode(kept, add_special_tokens=False)) <= 20


def test_missing_vllm_says_how_to_install(monkeypatch, model_dir) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"tpt\[vllm\]"):
        vllm_backend.build(options(model_dir))
