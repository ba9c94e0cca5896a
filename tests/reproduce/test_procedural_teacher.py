"""The procedural expert teacher: correct, longer for harder documents, and a weak teacher that slips only
when it solves from scratch."""

from __future__ import annotations

import re

import pytest

from tpt.augment.backends.base import GenerationRequest, SamplingParams, build_backend, request_seed
from tpt.core.errors import ConfigError
from tpt.reproduce.problems import Problem, answer, document
from tpt.reproduce.testbed import exercise_records, heldout_problems


def _request(key: int, problem: Problem, *, with_answer: bool) -> GenerationRequest:
    text = document(problem, with_answer=with_answer)
    record = {"id": f"d{key}", "text": text, "problem": problem.as_dict()}
    return GenerationRequest(
        key=key,
        messages=({"role": "user", "content": text},),
        seed=request_seed(0, f"d{key}"),
        meta={"text": text, "id": f"d{key}", "record": record},
    )


def _final(text: str) -> int:
    return int(re.findall(r"-?\d+", text)[-1])


def test_expert_writes_every_intermediate_result() -> None:
    backend = build_backend("procedural", {"engine_args": {}})
    p = Problem(type="mul_add", operands=(8, 6, 7), name="Dan", item="pens")
    [result] = backend.generate([_request(0, p, with_answer=True)], SamplingParams())
    assert result.text == "<think>\n8 x 6 = 48. 48 + 7 = 55. So Dan has 55 pens.\n</think>"
    assert result.error is None and result.finish_reason == "stop"


def test_harder_documents_get_longer_trajectories(corpus_config, world) -> None:
    backend = build_backend("procedural", {"engine_args": {}})
    rows = heldout_problems(corpus_config, world, per_level=10)
    reqs = [_request(i, Problem.from_dict(r["problem"]), with_answer=True) for i, r in enumerate(rows)]
    lengths: dict[int, list[int]] = {}
    for res, row in zip(backend.generate(reqs, SamplingParams()), rows, strict=True):
        lengths.setdefault(row["level"], []).append(res.completion_tokens)
    means = [sum(v) / len(v) for _, v in sorted(lengths.items())]
    assert means == sorted(means) and means[0] < means[-1]


def test_weak_teacher_slips_from_scratch_but_explains_correctly(corpus_config, world) -> None:
    backend = build_backend("procedural", {"engine_args": ["error_rate=0.4"]})
    rows = heldout_problems(corpus_config, world, per_level=200)
    problems = [Problem.from_dict(r["problem"]) for r in rows]
    scratch = list(
        backend.generate(
            [_request(i, p, with_answer=False) for i, p in enumerate(problems)], SamplingParams()
        )
    )
    explained = list(
        backend.generate([_request(i, p, with_answer=True) for i, p in enumerate(problems)], SamplingParams())
    )
    scratch_acc = sum(_final(r.text) == answer(p) for r, p in zip(scratch, problems, strict=True)) / len(
        problems
    )
    assert 0.54 < scratch_acc < 0.66  # 1 - error_rate, within sampling noise of 600 problems
    assert all(_final(r.text) == answer(p) for r, p in zip(explained, problems, strict=True))
    again = list(
        backend.generate(
            [_request(i, p, with_answer=False) for i, p in enumerate(problems)], SamplingParams()
        )
    )
    assert [r.text for r in again] == [r.text for r in scratch]  # slips come from the request seed


def test_records_without_a_problem_fail_as_data_and_limits_cut() -> None:
    backend = build_backend("procedural", {})
    req = GenerationRequest(
        key=7, messages=({"role": "user", "content": "x"},), meta={"text": "x", "record": {}}
    )
    [res] = backend.generate([req], SamplingParams())
    assert res.key == 7 and res.error and "problem" in res.error
    p = Problem(type="two_prod", operands=(2, 3, 4, 5), name="Eve", item="coins")
    [cut] = backend.generate([_request(1, p, with_answer=True)], SamplingParams(max_tokens=4))
    assert cut.finish_reason == "length" and cut.completion_tokens == 4


def test_bad_engine_args_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        build_backend("procedural", {"engine_args": {"error_rate": 2}})
    with pytest.raises(ConfigError):
        build_backend("procedural", {"engine_args": {"temperature": 1}})
    with pytest.raises(ConfigError):
        build_backend("procedural", {"engine_args": ["error_rate"]})


def test_exercise_records_go_through_the_teacher(corpus_config, world) -> None:
    backend = build_backend("procedural", {"engine_args": {"error_rate": 0}})
    rows = heldout_problems(corpus_config, world, per_level=6)
    reqs = [
        GenerationRequest(key=i, messages=(), meta={"text": r["text"], "record": r})
        for i, r in enumerate(exercise_records(rows))
    ]
    outs = list(backend.generate(reqs, SamplingParams()))
    assert [str(_final(o.text)) for o in outs] == [r["answer"] for r in rows]


def test_a_misconceived_teacher_is_wrong_the_same_way_every_time(corpus_config, world) -> None:
    """7 x n is taken for 8 x n, stated answer or not: a consistent error a student cannot average away."""
    backend = build_backend("procedural", {"engine_args": ["misconception=1"]})
    p = Problem(type="mul_add", operands=(6, 7, 3), name="Dan", item="pens")
    for with_answer in (True, False):
        [r] = backend.generate([_request(0, p, with_answer=with_answer)], SamplingParams())
        assert r.text == "<think>\n6 x 7 = 48. 48 + 3 = 51. So Dan has 51 pens.\n</think>"
    q = Problem(type="mul_add", operands=(6, 5, 3), name="Dan", item="pens")
    [r] = backend.generate([_request(1, q, with_answer=False)], SamplingParams())
    assert _final(r.text) == answer(q)  # no 7: no error
    with pytest.raises(ConfigError):
        build_backend("procedural", {"engine_args": ["misconception=maybe"]})


def test_the_filler_control_keeps_the_token_count_and_drops_the_content() -> None:
    import json

    from tokenizers import Tokenizer

    from tpt.reproduce.testbed_tokenizer import tokenizer_json

    tok = Tokenizer.from_str(json.dumps(tokenizer_json()))
    p = Problem(type="chain3", operands=(2, 3, 4, 5), name="Dan", item="pens")
    [real] = build_backend("procedural", {}).generate([_request(0, p, with_answer=True)], SamplingParams())
    [fill] = build_backend("procedural", {"engine_args": ["filler=1"]}).generate(
        [_request(0, p, with_answer=True)], SamplingParams()
    )
    assert set(fill.text.removeprefix("<think>").removesuffix("</think>").split()) == {"so"}
    assert len(tok.encode(fill.text).ids) == len(tok.encode(real.text).ids)
