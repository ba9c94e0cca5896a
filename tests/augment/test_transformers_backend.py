"""The `transformers` backend: refilled batches, per-row sampling and stops, truncation, SmolLM2.

Run: .venv/bin/python -m pytest tests/augment/test_transformers_backend.py Mechanics run on a tiny
random Llama (float32, the embedded teacher's tokenizer and chat template), where greedy decoding
must match `model.generate` token for token; one test runs the real embedded SmolLM2-135M-Instruct
on a handful of short generations.
"""

from __future__ import annotations

import itertools
import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tpt.augment import chat  # noqa: E402
from tpt.augment.backends import refill  # noqa: E402
from tpt.augment.backends import transformers_backend as tb  # noqa: E402
from tpt.augment.backends.base import GenerationRequest, SamplingParams, build_backend  # noqa: E402
from tpt.augment.truncation import truncate_texts  # noqa: E402
from tpt.core.errors import ConfigError  # noqa: E402

WORDS = "lattice group ring field module prime order kernel image basis vector space".split()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A 2-layer random Llama with GQA and the embedded teacher's tokenizer, as an HF directory.

    Untied embeddings and a wide init make its greedy output varied (a tied one repeats its input).
    """
    from tpt.core.hfmodel import resolve_model_dir

    tok = transformers.AutoTokenizer.from_pretrained(str(resolve_model_dir(None)))
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=False,
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def options(model, **kw) -> dict:
    base = {
        "model": None if model is None else str(model),
        "base_url": None,
        "api_key_env": None,
        "concurrency": None,
        "request_timeout_s": None,
        "max_retries": None,
        "tokenizer": None,
        "batch_size": 3,
        "dtype": "float32",
        "device": "cpu",
        "open_think": "auto",
        "engine_args": {},
        "seed": None,
    }
    return {**base, **kw}


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return tb.build(options(tiny_dir))


def req(i: int, words: int, seed: int | None = None) -> GenerationRequest:
    text = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(words))
    return GenerationRequest(key=i, messages=({"role": "user", "content": text},), seed=seed)


def greedy_reference(backend, request, max_new_tokens: int) -> list[int]:
    """What plain `model.generate` says, one request at a time, no padding."""
    prompt, _ = chat.render_prompt(backend.tok, request.messages, backend.open_think)
    ids = torch.tensor([backend.tok.encode(prompt, add_special_tokens=False)])
    out = backend.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=None,
        pad_token_id=2,
    )
    return out[0, ids.shape[1] :].tolist()


def test_refilled_batches_decode_exactly_like_model_generate(tiny) -> None:
    # Prompts of different lengths against a short context give rows different budgets, so rows
    # finish at different steps and new ones are prefilled into the running cache with different
    # left paddings.
    requests = [req(i, words=5 + 3 * (i % 4)) for i in range(8)]
    shortest = min(len(tiny.tok.encode(chat.render_prompt(tiny.tok, r.messages, True)[0])) for r in requests)
    tiny.max_model_len = context = shortest + 18  # budgets 18, 15, 12, 9 by prompt length
    try:
        results = list(tiny.generate(iter(requests), SamplingParams(temperature=0, max_tokens=20, stop=())))
    finally:
        tiny.max_model_len = 256
    assert sorted(r.key for r in results) == list(range(8))
    budgets = set()
    for r in results:
        request = requests[r.key]
        budget = min(20, context - r.prompt_tokens)
        budgets.add(budget)
        expected = greedy_reference(tiny, request, budget)
        assert r.error is None and r.finish_reason == "length"
        assert r.completion_tokens == budget
        assert r.text == tiny.tok.decode(expected, skip_special_tokens=True)
    assert len(budgets) > 2  # the test really exercised rows ending at different steps


def test_completion_order_and_lazy_pulling(tiny) -> None:
    pulled = []

    def stream():
        for i in itertools.count():  # unbounded, like the stage's stream
            pulled.append(i)
            yield req(i, words=4, seed=i)

    gen = tiny.generate(stream(), SamplingParams(max_tokens=3, stop=()))
    first = [next(gen) for _ in range(5)]
    gen.close()
    assert len({r.key for r in first}) == 5
    assert len(pulled) <= tiny.lookahead + 1  # one window at a time, not the whole stream


def test_seeds_make_rows_independent_of_their_batch(tiny) -> None:
    sampling = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=12, stop=())
    alone = list(tiny.generate([req(0, 6, seed=42)], sampling))[0]
    crowd = [req(0, 6, seed=42)] + [req(i, 3 + i, seed=i) for i in range(1, 6)]
    together = {r.key: r for r in tiny.generate(crowd, sampling)}
    assert together[0].text == alone.text
    other_seed = list(tiny.generate([req(0, 6, seed=43)], sampling))[0]
    assert other_seed.text != alone.text
    again = list(tiny.generate([req(0, 6, seed=42)], sampling))[0]
    assert again.text == alone.text


def test_stop_string_ends_the_row_and_is_left_out(tiny) -> None:
    free = list(tiny.generate([req(1, 8)], SamplingParams(temperature=0, max_tokens=16, stop=())))[0]
    ids = greedy_reference(tiny, req(1, 8), 16)
    before = tiny.tok.decode(ids[:6], skip_special_tokens=True)
    stop = tiny.tok.decode(ids[6:8], skip_special_tokens=True)
    assert free.text.startswith(before + stop)
    [cut] = tiny.generate([req(1, 8)], SamplingParams(temperature=0, max_tokens=16, stop=(stop,)))
    assert (cut.finish_reason, cut.stop) == ("stop", stop)  # which stop ended it
    assert cut.text == free.text[: free.text.find(stop)]
    assert cut.completion_tokens <= 8  # generation stopped there, it was not cut afterwards


def test_end_of_sequence_token_stops_the_row(tiny) -> None:
    ids = greedy_reference(tiny, req(2, 8), 16)
    first_new = next(i for i in range(1, 16) if ids[i] not in ids[:i])
    saved = tiny.eos_ids
    tiny.eos_ids = frozenset({ids[first_new]})  # make a later greedy token this model's "EOS"
    try:
        [r] = tiny.generate([req(2, 8)], SamplingParams(temperature=0, max_tokens=16, stop=()))
    finally:
        tiny.eos_ids = saved
    assert (r.finish_reason, r.stop, r.completion_tokens) == ("stop", "eos", first_new + 1)
    assert r.text == tiny.tok.decode(ids[:first_new], skip_special_tokens=True)


def test_a_watch_ends_a_row_where_it_says_and_leaves_the_others(tiny) -> None:
    """The per-row hook of the decode loop (refill.RowWatch): called after each token of each row."""
    sampling = SamplingParams(temperature=0, max_tokens=12, stop=())
    free = {r.key: r for r in tiny.generate([req(3, 6), req(4, 6)], sampling)}
    seen: list[int] = []

    def watch(row) -> str | None:
        seen.append(row.request.key)
        return "watched" if row.request.key == 3 and len(row.generated) >= 4 else None

    tiny.watch = watch
    try:
        got = {r.key: r for r in tiny.generate([req(3, 6), req(4, 6)], sampling)}
    finally:
        tiny.watch = None
    assert (got[3].finish_reason, got[3].stop, got[3].completion_tokens) == ("stop", "watched", 4)
    assert free[3].text.startswith(got[3].text) and len(got[3].text) < len(free[3].text)
    assert got[4] == free[4]  # the other row of the batch decodes as without the watch
    assert seen.count(4) == free[4].completion_tokens


def test_a_prompt_longer_than_the_context_fails_alone(tiny) -> None:
    requests = [req(0, 5), req(1, 400), req(2, 5)]
    results = {r.key: r for r in tiny.generate(requests, SamplingParams(max_tokens=4, stop=()))}
    assert "context is 256" in results[1].error
    assert results[1].prompt_tokens > 256
    assert results[0].error is None and results[2].error is None
    assert results[0].completion_tokens == 4


def test_open_think_prefills_the_assistant_turn(tiny, tiny_dir) -> None:
    prompt, opened = chat.render_prompt(tiny.tok, req(0, 3).messages, tiny.open_think)
    assert tiny.open_think and opened and prompt.endswith("<|im_start|>assistant\n<think>\n")
    [r] = tiny.generate([req(0, 3)], SamplingParams(max_tokens=2))
    assert r.prefilled_think and r.prompt_tokens == len(tiny.tok.encode(prompt, add_special_tokens=False))
    off = tb.TransformersBackend(tiny.model, tiny.tok, model_id="x", open_think="off")
    [r] = off.generate([req(0, 3)], SamplingParams(max_tokens=2))
    assert not r.prefilled_think


def test_reasoning_templates_are_not_opened_twice(tiny) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(tiny.tok.name_or_path)
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
    )
    assert chat.wants_open_think(tok, "auto") is False  # the template knows <think>: a reasoning model
    for mode in (False, True):
        prompt, opened = chat.render_prompt(tok, req(0, 3).messages, mode)
        assert opened and prompt.count("<think>") == 1


def test_truncate_keeps_a_prefix_counted_in_the_teacher_tokenizer(tiny) -> None:
    long = "Déjà vu: the 2nd lattice isomorphism theorem 🙂 relates subgroups. " * 300
    short = "A short document."
    [(kept, n, cut), (same, m, not_cut)] = tiny.truncate([long, short], 50)
    assert cut and not not_cut
    assert long.startswith(kept) and n == len(tiny.tok.encode(kept, add_special_tokens=False)) <= 50
    assert n >= 45  # cut at a token boundary near the limit, not far before it
    assert (same, m) == (short, len(tiny.tok.encode(short, add_special_tokens=False)))
    for limit in range(1, 40):  # boundaries inside multi-byte characters and emoji
        text = "🙂é🙂 ümlaut" * 5
        [(kept, n, _)] = truncate_texts(tiny.tok, [text], limit)
        assert text.startswith(kept) and n <= limit


def test_sample_tokens_matches_a_full_sort_nucleus() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 3000) * 4
    rng = random.Random(0)
    for _ in range(50):
        draws = torch.tensor([rng.random() for _ in range(6)])
        got = refill.sample_tokens(logits, 0.7, 0.9, draws)
        # reference: sort everything, keep the smallest prefix reaching 0.9, invert the CDF
        probs = torch.softmax(logits / 0.7, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < 0.9
        sorted_p = sorted_p * keep
        cdf = sorted_p.cumsum(-1)
        idx = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True)
        assert got.tolist() == order.gather(-1, idx).squeeze(-1).tolist()


def test_sample_tokens_worked_example() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    picks = {refill.sample_tokens(logits, 1.0, 0.9, torch.tensor([u / 100])).item() for u in range(100)}
    assert picks == {0, 1, 2}  # the 0.05 token lies outside the 0.9 nucleus
    assert refill.sample_tokens(logits, 0.0, 0.9, torch.tensor([0.99])).item() == 0  # greedy


def test_growing_cache_layer_appends_in_place_and_adopts_replacements() -> None:
    layer = refill.GrowingLayer()
    k = torch.arange(2 * 1 * 3 * 2, dtype=torch.float32).view(2, 1, 3, 2)
    keys, _ = layer.update(k, k)
    step = torch.full((2, 1, 1, 2), -1.0)
    keys, _ = layer.update(step, step)
    assert torch.equal(keys, torch.cat([k, step], dim=2))
    buffer = layer._buffers[0].data_ptr()
    layer.update(step, step)
    assert layer._buffers[0].data_ptr() == buffer  # appended in place
    layer.keys, layer.values = layer.keys[:1], layer.values[:1]  # the batch retired row 1
    keys, _ = layer.update(step[:1], step[:1])
    assert keys.shape == (1, 1, 6, 2) and torch.equal(keys[0, 0, :3], k[0, 0])


def test_options_are_checked(tiny_dir) -> None:
    with pytest.raises(ConfigError, match="unknown --engine-arg"):
        tb.build(options(tiny_dir, engine_args={"nonsense": 1}))
    with pytest.raises(ConfigError, match="integer"):
        tb.build(options(tiny_dir, engine_args={"lookahead": "many"}))
    with pytest.raises(ConfigError, match="open-think"):
        tb.build(options(tiny_dir, open_think="maybe"))
    backend = build_backend("transformers", options(tiny_dir, batch_size=5, engine_args={"lookahead": "7"}))
    assert (backend.name, backend.batch_size, backend.lookahead) == ("transformers", 5, 7)
    assert backend.model_id == str(tiny_dir)


def test_embedded_teacher_writes_short_thinking() -> None:
    """The real SmolLM2-135M-Instruct (bf16, CPU): four short seeded generations, one batch."""
    backend = build_backend("transformers", options(None, batch_size=4, dtype="bfloat16", seed=7))
    assert backend.model_id == "SmolLM2-135M-Instruct" and backend.open_think
    docs = [
        "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
        "Euclid proved that there are infinitely many prime numbers.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "A matrix is invertible exactly when its determinant is not zero.",
    ]
    kept = backend.truncate(docs, 8)
    assert all(d.startswith(k) and n <= 8 and cut for d, (k, n, cut) in zip(docs, kept, strict=True))
    requests = [
        GenerationRequest(
            key=i,
            messages=(
                {
                    "role": "user",
                    "content": f"{d}\n\n## End of the context\n\n"
                    "Simulate an expert's in-depth thought process.",
                },
            ),
            seed=100 + i,
        )
        for i, d in enumerate(docs)
    ]
    results = {r.key: r for r in backend.generate(requests, SamplingParams(max_tokens=16))}
    assert sorted(results) == [0, 1, 2, 3]
    for r in results.values():
        assert r.error is None and r.prefilled_think and r.finish_reason in ("stop", "length")
        assert 1 <= r.completion_tokens <= 16 and r.prompt_tokens > 20
        assert r.text.strip() and "</think>" not in r.text
    backend.close()


def test_a_request_with_its_own_cap_stops_there(tiny) -> None:
    """A --thinking-budget cap (GenerationRequest.max_tokens) beside rows at the run's cap, in one batch."""
    capped = GenerationRequest(key=0, messages=req(0, 6).messages, max_tokens=3)
    sampling = SamplingParams(temperature=0, max_tokens=12, stop=())
    results = {r.key: r for r in tiny.generate(iter([capped, req(1, 6)]), sampling)}
    assert results[0].completion_tokens == 3 and results[0].finish_reason == "length"
    assert results[1].completion_tokens == 12
