"""The loop guard inside the transformers backend's refill decode loop, on a model that really loops.

The model is a 2-layer Llama whose attention and MLP outputs are zeroed, so each next token depends on
the current one alone, and whose output head maps token a to a chosen token b: greedy decoding then
walks a path of PATH distinct tokens and falls into a cycle of CYCLE tokens forever, like a small
teacher stuck in a loop. A second prompt's path ends in the end-of-sequence token (no loop).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tpt.augment.backends import transformers_backend as tb  # noqa: E402
from tpt.augment.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from tpt.augment.loopguard import LoopGuardOptions  # noqa: E402

PATH, CYCLE = 40, 5
LOOPING_START, CLEAN_START = 1000, 3000
GUARD = LoopGuardOptions(ngram=4, window=32, threshold=0.7)


def _successors() -> dict[int, int]:
    """The next token of each token of the two walks (a request's prompt ends with a walk's start)."""
    nxt = {}
    for i in range(PATH - 1):
        nxt[LOOPING_START + i] = LOOPING_START + i + 1
        nxt[CLEAN_START + i] = CLEAN_START + i + 1
    loop = [LOOPING_START + PATH + j for j in range(CYCLE)]
    nxt[LOOPING_START + PATH - 1] = loop[0]
    for j in range(CYCLE):
        nxt[loop[j]] = loop[(j + 1) % CYCLE]
    nxt[CLEAN_START + PATH - 1] = 2  # the end-of-sequence token
    return nxt


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    from tpt.core.hfmodel import resolve_model_dir

    tok = transformers.AutoTokenizer.from_pretrained(str(resolve_model_dir(None)))
    config = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        emb = torch.nn.functional.normalize(torch.randn(len(tok), 64), dim=-1) * 8
        model.model.embed_tokens.weight.copy_(emb)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = torch.zeros_like(emb)
        for a, b in _successors().items():
            head[b] += emb[a]  # the cycle's first token follows two: the path's end and the cycle's
        model.lm_head.weight.copy_(head)
    path = tmp_path_factory.mktemp("looping-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    backend = tb.build({"model": str(path), "batch_size": 2, "dtype": "float32", "device": "cpu"})
    return backend


def _request(backend, key: int, start: int) -> GenerationRequest:
    """A request whose prompt ends with token `start` (see _StartAt): its walk begins there."""
    return GenerationRequest(key=key, messages=({"role": "user", "content": "x"},), meta={"start": start})


class _StartAt:
    """Wraps prepare_prompt so a request's prompt ends with its chosen start token."""

    def __init__(self, monkeypatch) -> None:
        original = tb.prepare_prompt

        def prepare(tok, request, open_think, max_tokens, max_model_len):
            out = original(tok, request, open_think, max_tokens, max_model_len)
            ids, prefilled, budget = out
            return [*ids, request.meta["start"]], prefilled, budget

        monkeypatch.setattr(tb, "prepare_prompt", prepare)


def _sampling(guard: LoopGuardOptions, **kw) -> SamplingParams:
    return SamplingParams(temperature=0, max_tokens=300, stop=(), loop_guard=guard, **kw)


def test_a_looping_row_is_stopped_where_the_loop_began_and_frees_its_slot(looping, monkeypatch):
    _StartAt(monkeypatch)
    off = {
        r.key: r
        for r in looping.generate(
            [_request(looping, 0, LOOPING_START), _request(looping, 1, CLEAN_START)],
            _sampling(LoopGuardOptions(enabled=False)),
        )
    }
    assert off[0].finish_reason == "length" and off[0].completion_tokens == 300  # it loops to the cap
    assert (off[1].finish_reason, off[1].stop) == ("stop", "eos")
    on = list(
        looping.generate(
            [_request(looping, 0, LOOPING_START), _request(looping, 1, CLEAN_START)], _sampling(GUARD)
        )
    )
    got = {r.key: r for r in on}
    looped = got[0]
    assert (looped.finish_reason, looped.stop) == ("repetition", "loop_guard")
    # stopped within one window of the loop's start, not at the cap of 300
    assert PATH < looped.completion_tokens <= PATH + GUARD.window + GUARD.ngram
    # the loop began after the path (the path's first token is the prompt's: PATH - 1 generated)
    assert abs(looped.loop_start - (PATH - 1)) <= 1
    expected = looping.tok.decode(
        [LOOPING_START + i for i in range(1, PATH)][: looped.loop_start], skip_special_tokens=True
    )
    assert looped.text == expected
    assert got[1] == off[1]  # the row beside it decodes as without the guard


def test_the_freed_slot_is_refilled_at_once(looping, monkeypatch):
    """Batch size 1: the second request starts only when the first leaves; with the guard the first
    leaves after ~70 tokens instead of 300, so the whole run decodes far fewer steps."""
    _StartAt(monkeypatch)
    looping.batch_size = 1
    try:
        steps = {}
        for name, guard in (("off", LoopGuardOptions(enabled=False)), ("on", GUARD)):
            calls = 0
            forward = looping.model.forward

            def counting(*a, _f=forward, **k):
                nonlocal calls
                calls += 1
                return _f(*a, **k)

            looping.model.forward = counting
            try:
                results = list(
                    looping.generate(
                        [_request(looping, 0, LOOPING_START), _request(looping, 1, LOOPING_START)],
                        _sampling(guard),
                    )
                )
            finally:
                del looping.model.forward
            assert len(results) == 2
            steps[name] = calls
            assert {r.finish_reason for r in results} == ({"length"} if name == "off" else {"repetition"})
    finally:
        looping.batch_size = 2
    assert steps["on"] < 0.4 * steps["off"]


def _generated_ids(backend, request, sampling) -> list[int]:
    rows = []
    backend.watch = lambda row: rows.append(row) or None
    try:
        list(backend.generate([request], sampling))
    finally:
        backend.watch = None
    return rows[-1].generated


def test_repetition_penalty_breaks_the_loop_and_is_off_by_default(looping, monkeypatch):
    _StartAt(monkeypatch)
    off = LoopGuardOptions(enabled=False)
    plain = _generated_ids(looping, _request(looping, 0, LOOPING_START), _sampling(off))
    assert plain[: PATH - 1] == [LOOPING_START + i for i in range(1, PATH)]
    assert set(plain[PATH - 1 :]) == {LOOPING_START + PATH + j for j in range(CYCLE)}  # the loop, to the cap
    penalized = _generated_ids(
        looping, _request(looping, 0, LOOPING_START), _sampling(off, repetition_penalty=10.0)
    )
    assert penalized[: PATH - 1] == plain[: PATH - 1]  # a path of new tokens is not penalized
    # in the loop, a token already out loses to unseen ones: the cycle is left within a period
    cycle = {LOOPING_START + PATH + j for j in range(CYCLE)}
    assert not set(penalized[PATH - 1 + CYCLE : PATH - 1 + 3 * CYCLE]) <= cycle
    assert SamplingParams().penalties() == {
        "repetition_penalty": 1.0,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
    }


def test_frequency_and_presence_penalties_act_on_the_output_tokens():
    import random

    from tpt.augment.backends.refill import Row, apply_penalties

    row = Row(
        request=GenerationRequest(key=0, messages=()), prompt_ids=[5], prefilled_think=False, budget=9,
        rng=random.Random(0), generated=[1, 1, 3],
    )  # fmt: skip
    logits = torch.tensor([[1.0, 2.0, -1.0, 4.0, 0.5, 2.0]])
    out = apply_penalties(logits, [row], SamplingParams(frequency_penalty=0.5, presence_penalty=0.25))
    assert out.tolist() == [[1.0, 2.0 - 1.0 - 0.25, -1.0, 4.0 - 0.5 - 0.25, 0.5, 2.0]]
    out = apply_penalties(logits, [row], SamplingParams(repetition_penalty=2.0))
    assert out.tolist() == [[1.0, 1.0, -1.0, 2.0, 0.5, 1.0]]  # 1, 3 (output) and 5 (prompt); 0 untouched
    assert logits.tolist() == [[1.0, 2.0, -1.0, 4.0, 0.5, 2.0]]  # the model's logits are left as they were
