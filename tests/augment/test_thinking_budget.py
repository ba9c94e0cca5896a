"""`tpt augment --thinking-budget`: each document's cap planned before generation, never exceeded in all,
the same after a resume (the plan is read from budget.json, not recomputed or counted in memory), and
sent to the server as the request's max_tokens (the stub on 127.0.0.1 honours it)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tpt.augment.budget import BudgetOptions, make_plan, parse_budget, score
from tpt.core.errors import ConfigError

pytest.importorskip("aiohttp")

from tpt.cli import main  # noqa: E402
from tpt.testing.openai_stub import StubConfig, StubServer, augment_argv  # noqa: E402


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prose = " ".join(
            rng.choice(["the", "river", "town", "market", "old"]) for _ in range(rng.randint(5, 300))
        )
        steps = " ".join(
            f"{rng.randint(2, 99)} x {rng.randint(2, 9)} = ? therefore" for _ in range(rng.randint(0, 30))
        )
        out.append(f"Document {i}. {prose} {steps}")
    return out


@pytest.mark.parametrize("allocation", ["uniform", "difficulty"])
@pytest.mark.parametrize("budget", ["40/doc", "9000", "3e7/1M"])
def test_the_plan_never_exceeds_the_budget_and_predicts_the_caps_exactly(allocation, budget) -> None:
    docs = texts(400)
    plan = make_plan(parse_budget(budget, allocation), docs, max_cap=120, max_words=2048)
    caps = [plan.cap(t) for t in docs]
    assert sum(caps) == plan.planned_tokens <= plan.budget
    assert all(1 <= c <= 120 for c in caps)
    assert plan.budget == {"40/doc": 16000, "9000": 9000, "3e7/1M": 12000}[budget]
    if allocation == "uniform":
        assert len(set(caps)) == 1
    else:  # harder documents never get less, and the budget is nearly all used (the scale is the largest)
        ranked = sorted(zip((score(t, 2048) for t in docs), caps, strict=True))
        assert all(a[1] <= b[1] for a, b in zip(ranked, ranked[1:], strict=False))
        assert plan.planned_tokens >= plan.budget - len(docs) or max(caps) == 120


def test_difficulty_gives_reasoning_dense_documents_more() -> None:
    prose = "The old town by the river has a market on the square " * 4
    worked = "If 12 x 7 = 84 then 84 / 4 = 21 and so each gets 21 " * 4
    plan = make_plan(BudgetOptions(tokens=50, per_document=True, allocation="difficulty"),
                     [prose, worked] * 10, max_cap=500, max_words=2048)  # fmt: skip
    assert plan.cap(worked) > 2 * plan.cap(prose)


@pytest.mark.parametrize(
    ("text", "error"),
    [("lots", "TOKENS"), ("0", "> 0"), ("-5/doc", "TOKENS"), ("1e999", "finite")],
)
def test_a_bad_budget_says_what_is_expected(text, error) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_budget(text)


def test_a_budget_below_one_token_a_document_is_refused() -> None:
    with pytest.raises(ConfigError, match="less than one thinking token for each of the 10 documents"):
        make_plan(BudgetOptions(tokens=5), texts(10), max_cap=100, max_words=100)


def write_corpus(path: Path, n: int) -> Path:
    with path.open("w") as f:
        for i, text in enumerate(texts(n, seed=1)):
            f.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    return path


def records(out: Path) -> list[dict]:
    return [json.loads(line) for p in sorted((out / "shards").glob("part-*.jsonl")) for line in p.open()]


def test_a_run_spends_at_most_its_budget_and_a_resume_gives_the_same_caps(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", 30)
    out = tmp_path / "aug"
    flags = ("--thinking-budget", "25/doc", "--allocation", "difficulty", "--max-thinking-tokens", "80",
             "--shard-size", "10", "--no-progress")  # fmt: skip
    with StubServer(StubConfig(latency_ms=1, words=200)) as stub:  # the stub would write 200 words
        assert main(augment_argv(corpus, out, stub.base_url, *flags)) == 0
        sent = sorted(b["max_tokens"] for b in stub.stats.bodies)
    first = records(out)
    summary = json.loads((out / "summary.json").read_text())
    budget = summary["thinking_budget"]
    caps = [r["provenance"]["thinking_budget"]["cap"] for r in first]
    assert len(first) == 30 and budget["budget"] == 750 and budget["allocation"] == "difficulty"
    assert sorted(caps) == sent  # each request went out with its document's cap
    assert all(r["completion_tokens"] <= r["provenance"]["thinking_budget"]["cap"] for r in first)
    assert budget["spent"] == sum(r["completion_tokens"] for r in first) <= budget["planned_tokens"] <= 750
    assert len(set(caps)) > 3  # difficulty: not one cap for all

    # A run that stopped before its last shard: the same command finishes it with the same caps, read
    # from budget.json; a different --limit, or a corpus that grew, would break the plan: refused.
    last = sorted((out / "shards").glob("part-*.jsonl"))[-1]
    kept = sorted(last.read_text().splitlines())
    last.unlink()
    with StubServer(StubConfig(latency_ms=1, words=200)) as stub:
        assert main(augment_argv(corpus, out, stub.base_url, *flags, "--limit", "30")) == 2
        assert "--limit" in capsys.readouterr().err
        assert main(augment_argv(corpus, out, stub.base_url, *flags)) == 0
        assert sorted(last.read_text().splitlines()) == kept
        assert json.loads((out / "summary.json").read_text())["thinking_budget"] == budget
        with corpus.open("a") as f:
            f.write(json.dumps({"id": "late", "text": "12 x 12 = 144 " * 200}) + "\n")
        assert main(augment_argv(corpus, out, stub.base_url, *flags)) == 2
    assert (
        "input item 31, but budget.json planned the thinking budget for 30 items" in capsys.readouterr().err
    )
    assert len(records(out)) == 30


def test_allocation_without_a_budget_is_refused(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", 2)
    argv = ["augment", str(corpus), "--output", str(tmp_path / "o"), "--allocation", "difficulty"]
    assert main(argv) == 2
    assert "--allocation shares a --thinking-budget" in capsys.readouterr().err
