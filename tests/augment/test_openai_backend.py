"""The `openai` backend against a real local HTTP server that injects faults (openai_stub).

Run: .venv/bin/python -m pytest tests/augment/test_openai_backend.py
No mocked client: every test goes through aiohttp and a socket on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from tpt.augment.backends.base import GenerationRequest, SamplingParams, build_backend
from tpt.augment.backends.openai_http import OpenAIHttpBackend, build, normalize_base_url
from tpt.core.errors import BackendError, ConfigError
from tpt.testing.openai_stub import StubConfig, StubProcess, StubServer, expected_thinking


def req(i: int, text: str | None = None, seed: int | None = None) -> GenerationRequest:
    content = text if text is not None else f"document number {i} about lattices and groups"
    return GenerationRequest(key=i, messages=({"role": "user", "content": content},), seed=seed)


def backend_for(stub: StubServer, **kw: object) -> OpenAIHttpBackend:
    kw = {"model": "stub", "base_url": stub.base_url, "concurrency": 8, "retry_base_s": 0.01, **kw}
    return OpenAIHttpBackend(**kw)  # type: ignore[arg-type]


def run(backend: OpenAIHttpBackend, requests, **sampling: object) -> list:
    try:
        return list(backend.generate(requests, SamplingParams(**sampling)))  # type: ignore[arg-type]
    finally:
        backend.close()


def test_results_carry_their_request_text_usage_and_sampling_fields() -> None:
    with StubServer(StubConfig(latency_ms=2, words=30)) as stub:
        backend = backend_for(stub, engine_args={"top_k": 20, "chat_template_kwargs": {"x": 1}})
        results = run(backend, (req(i, seed=1000 + i) for i in range(40)), max_tokens=500)
        bodies = list(stub.stats.bodies)
    assert sorted(r.key for r in results) == list(range(40))
    for r in results:
        prompt = f"document number {r.key} about lattices and groups"
        assert r.text == expected_thinking(prompt, 30)
        assert (r.error, r.finish_reason, r.attempts, r.prefilled_think) == (None, "stop", 1, False)
        assert r.prompt_tokens == len(prompt.split()) and r.completion_tokens == 30
    body = bodies[-1]
    assert body["model"] == "stub" and body["temperature"] == 0.6 and body["top_p"] == 0.9
    assert body["max_tokens"] == 500 and body["stop"] == ["</think>"]
    assert body["top_k"] == 20 and body["chat_template_kwargs"] == {"x": 1}
    assert "continue_final_message" not in body
    key = int(body["messages"][0]["content"].split()[2])
    assert body["seed"] == 1000 + key  # the per-request seed, not the base seed


def test_in_flight_never_exceeds_concurrency_and_reaches_it() -> None:
    with StubServer(StubConfig(latency_ms=20)) as stub:
        results = run(backend_for(stub, concurrency=5), (req(i) for i in range(60)))
        assert stub.stats.max_in_flight == 5
    assert len(results) == 60


def test_requests_are_pulled_lazily_and_an_early_stop_cancels_cleanly() -> None:
    """An unbounded stream must not be drained: at most 2 x concurrency requests are held."""
    pulled = itertools.count()

    def endless():
        for i in itertools.count():
            next(pulled)
            yield req(i)

    with StubServer(StubConfig(latency_ms=5)) as stub:
        backend = backend_for(stub, concurrency=4)
        gen = backend.generate(endless(), SamplingParams())
        got = [next(gen) for _ in range(30)]
        gen.close()  # what a consumer's `break` does: in-flight requests are cancelled
        assert next(pulled) <= 30 + 2 * 4
        again = list(backend.generate((req(i) for i in range(5)), SamplingParams()))  # still usable
        backend.close()
    assert len({r.key for r in got}) == 30 and len(again) == 5


def test_a_slow_request_does_not_hold_back_the_others() -> None:
    config = StubConfig(latency_ms=5, slow_s=1.5, schedule=(("SLOW", ("slow",)),))
    with StubServer(config) as stub:
        requests = [req(0, "SLOW document")] + [req(i) for i in range(1, 40)]
        results = run(backend_for(stub, concurrency=4), requests)
    assert [r.key for r in results][-1] == 0  # completion order: the slow one comes out last
    assert len(results) == 40


@pytest.mark.parametrize("mode", ["reasoning_content", "reasoning"])
def test_reasoning_field_is_read(mode: str) -> None:
    with StubServer(StubConfig(latency_ms=1, think=mode, words=12)) as stub:
        [r] = run(backend_for(stub), [req(0)])
    assert r.reasoning == expected_thinking(req(0).messages[0]["content"], 12)
    assert r.text == ""  # the stop at </think> left no answer


def test_think_tags_pass_through_for_extraction() -> None:
    with StubServer(StubConfig(latency_ms=1, think="tags", words=12)) as stub:
        [r] = run(backend_for(stub), [req(0)])
    assert r.text.startswith("<think>\nThinking about") and "</think>" not in r.text
    assert r.reasoning is None


def test_open_think_on_prefills_and_asks_the_server_to_continue() -> None:
    with StubServer(StubConfig(latency_ms=1, words=12)) as stub:
        backend = build({"model": "stub", "base_url": stub.base_url, "open_think": "on"})
        [r] = run(backend, [req(0)])
        body = stub.stats.bodies[-1]
    assert body["messages"][-1] == {"role": "assistant", "content": "<think>\n"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert r.prefilled_think and r.text == expected_thinking(req(0).messages[0]["content"], 12) + "\n"


def test_length_cut_is_marked() -> None:
    with StubServer(StubConfig(latency_ms=1, words=40)) as stub:
        [r] = run(backend_for(stub), [req(0)], max_tokens=10)
    assert r.finish_reason == "length" and len(r.text.split()) == 10 and r.error is None


def test_every_transient_fault_is_retried_and_counted() -> None:
    faults = ("500", "503", "429", "drop", "partial", "garbage", "incomplete", "hang")
    config = StubConfig(latency_ms=1, retry_after_s=0.01, hang_s=30, schedule=(("FLAKY", faults),))
    with StubServer(config) as stub:
        backend = backend_for(stub, request_timeout_s=0.5, max_retries=len(faults))
        results = run(backend, [req(0, "FLAKY doc")] + [req(i) for i in range(1, 10)])
        assert stub.stats.by_fault["hang"] == 1
    flaky = next(r for r in results if r.key == 0)
    assert flaky.error is None and flaky.attempts == len(faults) + 1
    assert all(r.attempts == 1 and r.error is None for r in results if r.key)
    for kind in ("server_error", "rate_limited", "connection", "bad_response", "timeout"):
        assert backend.stats[f"retried:{kind}"] >= 1


def test_a_request_that_keeps_failing_becomes_an_error_result() -> None:
    config = StubConfig(latency_ms=1, schedule=(("DOOMED", ("500*",)),))
    with StubServer(config) as stub:
        results = run(backend_for(stub, max_retries=2), [req(0, "DOOMED")] + [req(i) for i in range(1, 6)])
    doomed = next(r for r in results if r.key == 0)
    assert doomed.attempts == 3 and doomed.error is not None
    assert doomed.error.startswith("server_error: HTTP 500") and "injected fault" in doomed.error
    assert all(r.error is None for r in results if r.key)


def test_retry_after_is_honoured() -> None:
    config = StubConfig(latency_ms=1, retry_after_s=0.4, schedule=(("LIMITED", ("429",)),))
    with StubServer(config) as stub:
        [r] = run(backend_for(stub), [req(0, "LIMITED")])
        [times] = stub.stats.attempt_times.values()
    assert r.error is None and r.attempts == 2
    assert times[1] - times[0] >= 0.4  # a lower bound: robust on a loaded machine


def test_a_lone_429_delays_only_its_own_request() -> None:
    """One document's 429 must not stall the others (it did: every request held off for its
    Retry-After, so a 10% fault mix stalled a 512-in-flight run; benchmarks/augment_soak.py)."""
    import hashlib

    config = StubConfig(latency_ms=5, retry_after_s=1.0, schedule=(("LIMITED", ("429",)),))
    with StubServer(config) as stub:
        requests = [req(0, "LIMITED"), *(req(i) for i in range(1, 31))]
        results = run(backend_for(stub, concurrency=4), requests)
        times = stub.stats.attempt_times
    limited = times.pop(hashlib.sha1(b"LIMITED").hexdigest())
    assert len(results) == 31 and not any(r.error for r in results) and len(limited) == 2
    others = [t for ts in times.values() for t in ts]
    assert limited[1] - limited[0] >= 1.0 and max(others) - limited[0] < 0.8  # nobody else waited


def test_429s_from_most_requests_hold_everyone_off() -> None:
    """When most answers are 429s the server limits everyone: new requests wait out the Retry-After."""
    import hashlib
    import threading

    config = StubConfig(latency_ms=1, retry_after_s=0.6, schedule=(("RL", ("429",)),))
    with StubServer(config) as stub:
        backend = backend_for(stub, concurrency=32)
        limited = threading.Thread(
            target=lambda: list(backend.generate([req(i, f"RL {i}") for i in range(20)], SamplingParams()))
        )
        limited.start()
        while len(stub.stats.attempt_times) < 20:
            time.sleep(0.01)
        time.sleep(0.1)  # the 429s are answered; the window holds 20 of them
        assert backend.rate_limited_widely()
        [late] = list(backend.generate([req(99, "LATE")], SamplingParams()))
        limited.join()
        backend.close()
        times = stub.stats.attempt_times
    first = min(times[hashlib.sha1(f"RL {i}".encode()).hexdigest()][0] for i in range(20))
    assert late.error is None and times[hashlib.sha1(b"LATE").hexdigest()][0] - first >= 0.5


def test_random_faults_still_give_exactly_one_result_per_request() -> None:
    config = StubConfig(
        latency_ms=2,
        fail_rate=0.3,
        retry_after_s=0.01,
        seed=7,
        faults=("500", "503", "429", "drop", "partial", "garbage", "incomplete"),
    )
    with StubServer(config) as stub:
        backend = backend_for(stub, concurrency=16, max_retries=12)
        results = run(backend, (req(i) for i in range(300)))
        served = stub.stats.requests
    assert sorted(r.key for r in results) == list(range(300))
    assert all(r.error is None for r in results)
    assert sum(r.attempts for r in results) == served == backend.stats["attempts"]
    assert served > 300  # faults did happen


def test_a_400_on_one_request_later_is_a_per_request_error() -> None:
    config = StubConfig(latency_ms=1, schedule=(("TOO LONG", ("400*",)),))
    with StubServer(config) as stub:
        requests = [req(i) for i in range(5)] + [req(5, "TOO LONG doc")] + [req(i) for i in range(6, 9)]
        results = run(backend_for(stub, concurrency=1), requests)
    bad = next(r for r in results if r.key == 5)
    assert bad.error is not None and bad.error.startswith("bad_request: HTTP 400") and bad.attempts == 1
    assert len(results) == 9


def test_4xx_on_all_first_requests_is_a_whole_run_error() -> None:
    with StubServer(StubConfig(latency_ms=1, schedule=(("", ("400*",)),))) as stub:
        with pytest.raises(BackendError, match="rejected the first 4 requests"):
            run(backend_for(stub, concurrency=2), (req(i) for i in range(50)))
        assert stub.stats.requests < 50  # it stopped early


def test_missing_or_wrong_key_fails_the_run_and_never_shows_the_key(monkeypatch) -> None:
    with StubServer(StubConfig(latency_ms=1, api_key="sk-right")) as stub:
        monkeypatch.delenv("TPT_TEST_KEY", raising=False)
        options = {"model": "stub", "base_url": stub.base_url, "api_key_env": "TPT_TEST_KEY"}
        with pytest.raises(BackendError, match=r"\$TPT_TEST_KEY is not set"):
            run(build(options), [req(0)])
        monkeypatch.setenv("TPT_TEST_KEY", "sk-wrong-secret")
        with pytest.raises(BackendError, match="was refused") as info:
            run(build(options), [req(0)])
        assert "sk-wrong-secret" not in str(info.value)
        monkeypatch.setenv("TPT_TEST_KEY", "sk-right")
        backend = build(options)
        assert "sk-right" not in repr(backend)
        [r] = run(backend, [req(0)])
        assert r.error is None and "Bearer sk-right" in stub.stats.auth_headers


def test_a_key_refused_mid_run_stops_the_run_instead_of_failing_every_document() -> None:
    config = StubConfig(latency_ms=1, schedule=(("KEY REVOKED", ("401*",)),))
    with StubServer(config) as stub:
        requests = [req(i) for i in range(10)] + [req(i, "KEY REVOKED") for i in range(10, 40)]
        with pytest.raises(BackendError, match="HTTP 401"):
            run(backend_for(stub, concurrency=2), requests)


def test_unknown_model_fails_before_any_generation() -> None:
    with StubServer(StubConfig(latency_ms=1, model="Qwen/Qwen3-8B")) as stub:
        with pytest.raises(BackendError, match=r"does not serve model 'qwen3-8b'.*'Qwen/Qwen3-8B'"):
            run(build({"model": "qwen3-8b", "base_url": stub.base_url}), [req(0)])
        assert stub.stats.requests == 0


def test_unreachable_server_is_a_clear_error() -> None:
    with StubServer() as stub:
        url = stub.base_url  # the port is free again once the stub stops
    backend = OpenAIHttpBackend(model="stub", base_url=url, max_retries=1, retry_base_s=0.01)
    with pytest.raises(BackendError, match="cannot reach an OpenAI-compatible server"):
        run(backend, [req(0)])


def test_base_url_and_option_checks() -> None:
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/chat/completions") == "http://h:8000/v1"
    assert normalize_base_url("https://openrouter.ai/api/v1/") == "https://openrouter.ai/api/v1"
    base = {"model": "m", "base_url": "http://127.0.0.1:1/v1"}
    with pytest.raises(ConfigError, match="--model"):
        build({**base, "model": None})
    with pytest.raises(ConfigError, match="--base-url"):
        build({**base, "base_url": "localhost:8000"})
    with pytest.raises(ConfigError, match="stream"):
        build({**base, "engine_args": {"stream": True}})
    with pytest.raises(ConfigError, match="--open-think"):
        build({**base, "open_think": "maybe"})
    backend = build_backend("openai", {**base, "concurrency": None, "max_retries": 0})
    assert (backend.name, backend.model_id, backend.concurrency, backend.max_retries) == (
        "openai",
        "m",
        64,
        0,
    )
    template = OpenAIHttpBackend(
        model="m",
        base_url=base["base_url"],
        engine_args={"max_tokens": None, "max_completion_tokens": 99},
    )
    body = template.body_template(SamplingParams())
    assert "max_tokens" not in body and body["max_completion_tokens"] == 99


def test_truncate_without_tokenizer_estimates_at_word_boundaries() -> None:
    backend = OpenAIHttpBackend(model="m", base_url="http://127.0.0.1:1/v1")
    text = "alpha beta gamma delta epsilon zeta"  # 35 characters
    [(kept, n, cut), (short, m, not_cut)] = backend.truncate([text, "tiny"], 4)
    assert (kept, n, cut) == ("alpha beta gamma", 4, True)
    assert (short, m, not_cut) == ("tiny", 1, False)


def test_truncate_with_a_local_tokenizer_is_exact(tmp_path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the lattice of subgroups is modular"] * 50, trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    backend = OpenAIHttpBackend(model="m", base_url="http://127.0.0.1:1/v1", tokenizer=str(tmp_path))
    texts = [
        "the lattice of subgroups is modular " * 40,
        "short",
        "émoji 😀😀😀 and ünïcode " * 30,
        "",
    ]
    out = backend.truncate(texts, 25)
    for text, (kept, n, cut) in zip(texts, out, strict=True):
        assert text.startswith(kept)
        assert n == len(tok.encode(kept, add_special_tokens=False).ids) <= 25
        assert cut == (kept != text)
    assert out[1] == ("short", len(tok.encode("short").ids), False)
    assert out[0][1] >= 24 and out[2][1] >= 22  # cut near the limit, not far before it
    # Tokens longer than the 6-characters-per-token window: the cut falls back to the whole text.
    long_tokens = " subgroups" * 100
    assert len(tok.encode(long_tokens[:60]).ids) < 10
    [(kept, n, cut)] = backend.truncate([long_tokens], 10)
    assert cut and long_tokens.startswith(kept) and n == 10
    assert n == len(tok.encode(kept, add_special_tokens=False).ids)


def test_stub_runs_as_a_subprocess_and_stops_itself() -> None:
    with StubProcess(
        ["--latency-ms", "1", "--fail-rate", "0.2", "--retry-after-s", "0"], max_seconds=60
    ) as stub:
        backend = OpenAIHttpBackend(model="stub", base_url=stub.base_url, retry_base_s=0.01, max_retries=10)
        results = run(backend, (req(i) for i in range(30)))
        proc = stub.proc
    assert len(results) == 30 and all(r.error is None for r in results)
    assert proc is not None and proc.poll() is not None


def test_stub_schedule_json_round_trips_through_the_cli_parser(tmp_path) -> None:
    from tpt.testing.openai_stub import parse_args

    path = tmp_path / "schedule.json"
    path.write_text(json.dumps([["doc-3", ["500", "429"]], ["POISON", ["400*"]]]))
    config, port, max_s = parse_args(["--port", "0", "--schedule", f"@{path}", "--max-seconds", "5"])
    assert config.schedule == (("doc-3", ("500", "429")), ("POISON", ("400*",)))
    assert (port, max_s) == (0, 5.0)


def test_close_is_idempotent_and_final() -> None:
    backend = OpenAIHttpBackend(model="m", base_url="http://127.0.0.1:1/v1")
    backend.close()
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        list(backend.generate([req(0)], SamplingParams()))


def test_every_sampling_control_is_sent_and_is_what_the_record_says() -> None:
    """A server fills the fields a request leaves out with its own defaults (vLLM: the model's
    generation_config, e.g. Qwen3's top-k 20; llama.cpp: top-k 40, min-p 0.05): tpt sends them all."""
    neutral = {
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }
    with StubServer(StubConfig(latency_ms=1, words=8)) as stub:
        backend = backend_for(stub)
        in_force = backend.sampling_in_force(SamplingParams(seed=3))
        run(backend, [req(0)])
        body = stub.stats.bodies[-1]
    assert {k: body[k] for k in neutral} == neutral
    assert in_force == {
        "temperature": 0.6,
        "top_p": 0.9,
        **neutral,
        "max_tokens": 8192,
        "stop": ["</think>"],
        "seed": 3,
    }
    # --engine-arg overrides win, and the record says so; --sampling-fields standard for hosted APIs.
    assert (
        OpenAIHttpBackend(
            model="m",
            base_url="http://127.0.0.1:1/v1",
            engine_args={"top_k": 20},
        ).sampling_in_force(SamplingParams())["top_k"]
        == 20
    )
    standard = build({"model": "m", "base_url": "http://127.0.0.1:1/v1", "sampling_fields": "standard"})
    body = standard.body_template(SamplingParams())
    assert not {"top_k", "min_p", "repetition_penalty"} & set(body)
    assert body["presence_penalty"] == 0.0 and body["frequency_penalty"] == 0.0
    served = build({"model": "m", "base_url": "http://127.0.0.1:1/v1", "server_engine": "llama.cpp"})
    assert served.body_template(SamplingParams())["repeat_penalty"] == 1.0  # llama-cpp-python's name
    with pytest.raises(ConfigError, match="--sampling-fields"):
        build({"model": "m", "base_url": "http://127.0.0.1:1/v1", "sampling_fields": "some"})


@pytest.mark.parametrize(("think", "stop"), [("tags", "</think>"), ("reasoning", "</think>")])
def test_the_servers_stop_reason_is_kept(think: str, stop: str) -> None:
    with StubServer(StubConfig(latency_ms=1, words=8, think=think)) as stub:
        [r] = run(backend_for(stub), [req(0)])
    assert (r.finish_reason, r.stop) == ("stop", stop)
