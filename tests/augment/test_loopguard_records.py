"""What a stopped trajectory becomes: with --loop-policy keep-prefix a record that says what happened
(finish_reason 'repetition', the loop's start, the tokens spent) and that validate tells apart; with drop
a 'repetition' failure. The summary counts them. A backend that stops one document in two stands in for
the teacher (the backends' own tests stop real loops)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from tpt.augment.backends.base import GenerationResult
from tpt.augment.config import AugmentConfig
from tpt.augment.executors import LocalExecutor
from tpt.augment.stage import run
from tpt.formats.records import AugmentedRecord


class HalfLooping:
    name, model_id = "fake", "fake-teacher"

    def truncate(self, texts, max_tokens):
        return [(t, len(t.split()), False) for t in texts]

    def generate(self, requests, sampling) -> Iterator[GenerationResult]:
        for r in requests:
            if "LOOP" in r.meta["text"]:
                yield GenerationResult(
                    key=r.key, text="We start by checking the base case and", prefilled_think=True,
                    finish_reason="repetition", stop="loop_guard", prompt_tokens=50, completion_tokens=300,
                    loop_start=9,
                )  # fmt: skip
            else:
                words = (
                    "First I restate the claim, then test it on a small case, find why it holds in "
                    "general, compare two proofs of it and say which one a reader would follow"
                )
                yield GenerationResult(
                    key=r.key, text=f"{words} (document {r.key}).", prefilled_think=True, finish_reason="stop", stop="eos",
                    prompt_tokens=50, completion_tokens=40,
                )  # fmt: skip

    def close(self) -> None:
        pass


def _augment(tmp_path, policy: str):
    src = tmp_path / "docs.jsonl"
    docs = [{"id": f"d{i}", "text": f"document {i} {'LOOP' if i % 2 else 'plain'} text"} for i in range(6)]
    src.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    out = tmp_path / policy
    cfg = AugmentConfig(inputs=[str(src)], output=out, backend="fake", loop_policy=policy, progress=False)
    summary = run(cfg, executor=LocalExecutor(lambda cfg: HalfLooping()))
    records = [
        AugmentedRecord.from_line(line)
        for f in sorted((out / "shards").glob("part-*.jsonl"))
        if not f.name.endswith(".failures.jsonl")
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    return summary, records, out


def test_keep_prefix_writes_a_record_that_says_what_happened(tmp_path):
    summary, records, _ = _augment(tmp_path, "keep-prefix")
    stopped = [r for r in records if r.finish_reason == "repetition"]
    assert len(records) == 6 and len(stopped) == 3
    for r in stopped:
        assert r.stopped_by == "loop_guard" and not r.thinking_closed
        assert r.thinking == "We start by checking the base case and"
        assert (r.loop.start_token, r.loop.tokens, r.loop.policy) == (9, 300, "keep-prefix")
        assert r.completion_tokens == 300
        assert r.provenance.loop_guard == {"enabled": True, "ngram": 8, "window": 256, "threshold": 0.7}
    assert all(r.loop is None for r in records if r.finish_reason == "stop")
    assert (summary.stopped_by_loop_guard, summary.loop_guard_tokens) == (3, 900)
    assert summary.to_json()["stopped_by_loop_guard"] == 3


def test_drop_makes_a_failure_instead(tmp_path):
    summary, records, out = _augment(tmp_path, "drop")
    assert len(records) == 3 and all(r.finish_reason == "stop" for r in records)
    assert summary.failures_by_reason == {"repetition": 3} and summary.stopped_by_loop_guard == 0
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert {f["reason"] for f in failures} == {"repetition"}
    assert "loop began at token 9" in failures[0]["detail"]


def test_validate_tells_the_stopped_records_apart(tmp_path):
    from tpt.cli import main

    _, _, out = _augment(tmp_path, "keep-prefix")
    assert main(["validate", str(out), "--output", str(tmp_path / "val")]) == 0
    summary = json.loads((tmp_path / "val" / "summary.json").read_text())
    assert "loop_stopped" in json.dumps(summary)
    rejected = [json.loads(line) for line in (tmp_path / "val" / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["reason"] for r in rejected) == ["loop_stopped"] * 3
