"""Read the finished Part 1 runs back: per-problem results of every arm, seed and task, the statistics of
the primary endpoint and of the secondary ones, and the teachers' own quality."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from tpt.core.artifacts import read_json
from tpt.core.errors import ArtifactError
from tpt.formats.reading import augment_shards, read_augmented
from tpt.formats.records import AugmentedRecord
from tpt.reproduce.experiment import BASELINE, RAW_ARMS, TEACHER, Layout, arm_names
from tpt.reproduce.presets import TASKS, Scale
from tpt.reproduce.problems import Problem, answer
from tpt.reproduce.stats import Results, bootstrap

NUMBER = re.compile(r"-?\d+")
STATEMENT = re.compile(r"(-?\d+)\s*([x×*+\-])\s*(-?\d+)\s*=\s*(-?\d+)")
"""An arithmetic statement in a trajectory: `8 x 6 = 48`, `48 + 7 = 55`."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ArtifactError(f"{path} is missing; re-run `tpt reproduce` to finish the runs")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


LOGLIK = "gold_loglik"
"""The key under which arm_results holds the per-problem log-likelihood of the gold answer."""


def arm_results(samples_path: Path, order: list[str]) -> dict[str, Results]:
    """task -> per-problem results over checkpoints, from an eval's samples file (problems in `order`);
    under LOGLIK, the gold answer's log-likelihood of the task that scores it."""
    hits: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for s in read_jsonl(samples_path):
        if s.get("task") in TASKS and s.get("tokens_seen"):
            hits[s["task"]][int(s["tokens_seen"])][s["id"]] = float(bool(s["correct"].get("accuracy")))
            if LOGLIK in s:
                hits[LOGLIK][int(s["tokens_seen"])][s["id"]] = float(s[LOGLIK])
    out = {}
    for task, by_tokens in hits.items():
        tokens = tuple(sorted(by_tokens))
        missing = [t for t in tokens if set(by_tokens[t]) != set(order)]
        if missing:
            raise ArtifactError(f"{samples_path}: checkpoint(s) {missing} of {task} miss test problems; "
                                "re-run `tpt reproduce`")  # fmt: skip
        out[task] = Results(
            tokens=tokens, correct=tuple(tuple(by_tokens[t][i] for i in order) for t in tokens)
        )
    return out


def collect_part1(layout: Layout, scale: Scale) -> dict[str, Any]:
    """Per arm: its teacher, its curves per seed and task, final accuracy and factor vs raw with intervals."""
    heldout = read_jsonl(layout.heldout)
    order = [r["id"] for r in heldout]
    clusters = [r["computation"] for r in heldout]
    levels = [r["level"] for r in heldout]
    per_arm: dict[str, dict[int, dict[str, Results]]] = defaultdict(dict)
    for seed in scale.seeds:
        for arm in arm_names(scale, seed):
            path = layout.eval_rows(seed, arm)
            per_arm[arm][seed] = arm_results(path.with_name(path.stem + ".samples.jsonl"), order)
    arms: dict[str, Any] = {}
    for arm, by_seed in per_arm.items():
        seeds = sorted(by_seed)
        entry: dict[str, Any] = {
            "teacher": TEACHER[arm],
            "seeds": seeds,
            "curves": {str(s): {task: {"tokens": list(r.tokens), "accuracy": list(r.curve().accuracy),
                                       "n": len(order)} for task, r in by_seed[s].items()} for s in seeds},
            "tasks": {},
        }  # fmt: skip
        baseline = None if arm in RAW_ARMS else BASELINE.get(arm, "raw")
        if baseline:
            entry["baseline"] = baseline
        for task in TASKS:
            mine = {s: by_seed[s][task] for s in seeds}
            if baseline:
                stats = bootstrap({s: per_arm[baseline][s][task] for s in seeds}, mine, clusters,
                                  replicates=scale.bootstrap_replicates, seed=0)  # fmt: skip
            else:
                stats = bootstrap(mine, None, clusters, replicates=scale.bootstrap_replicates, seed=0)
            t: dict[str, Any] = {"final_accuracy": _interval(stats["final_accuracy"])}
            if baseline:
                f = stats["factor"]
                reached = {str(s): x.reached for s, x in stats["per_seed"].items()}
                t["factor_vs_raw"] = {**_interval(f, "value"), "no_measurable_effect": f.includes(1.0),
                                      "verdict": verdict(f, reached),
                                      "per_seed": {str(s): x.value for s, x in stats["per_seed"].items()},
                                      "reached_raw_final": reached}  # fmt: skip
            t["final_by_level"] = _by_level(mine, levels)
            entry["tasks"][task] = t
        if all(LOGLIK in by_seed[s] for s in seeds):
            ll = bootstrap({s: by_seed[s][LOGLIK] for s in seeds}, None, clusters,
                           replicates=scale.bootstrap_replicates, seed=0)["final_accuracy"]  # fmt: skip
            entry[LOGLIK] = {
                **_interval(ll),
                "curves": {str(s): by_seed[s][LOGLIK].curve().accuracy for s in seeds},
            }
        primary = entry["tasks"][scale.primary_endpoint]
        entry["final_accuracy"] = primary["final_accuracy"]
        if baseline:
            entry["factor_vs_raw"] = primary["factor_vs_raw"]
        arms[arm] = entry
    return {"primary_endpoint": scale.primary_endpoint, "arms": arms, "test": _test_facts(heldout)}


def verdict(f: Any, reached: dict[str, bool]) -> str:
    """What a factor's interval says: a gain or a loss when it excludes 1, else no measurable effect; an
    arm that never reached the baseline's final accuracy in any seed is below it whatever its bound says."""
    if not any(reached.values()):
        return "below raw: never reached its final accuracy (the factor is an upper bound)"
    if f.includes(1.0):
        return "no measurable effect"
    return "gain" if f.lo > 1.0 else "loss"


def _interval(iv: Any, key: str = "mean") -> dict[str, Any]:
    return {key: iv.value, "ci": [iv.lo, iv.hi]}


def _by_level(results: dict[int, Results], levels: list[int]) -> dict[str, float]:
    out = {}
    for lv in sorted(set(levels)):
        idx = [j for j, x in enumerate(levels) if x == lv]
        out[f"level-{lv}"] = mean(mean(r.correct[-1][j] for j in idx) for r in results.values())
    return out


def _test_facts(heldout: list[dict[str, Any]]) -> dict[str, Any]:
    by_level: dict[str, set[str]] = defaultdict(set)
    for r in heldout:
        by_level[f"level-{r['level']}"].add(r["computation"])
    return {
        "problems": len(heldout),
        "distinct_computations": {k: len(v) for k, v in sorted(by_level.items())},
    }


def trajectory_quality(records: Sequence[AugmentedRecord], answers: dict[str, str]) -> dict[str, Any]:
    """How good a teacher's thinking is: the share of its arithmetic statements (`a op b = c`) that are
    right, and the share of trajectories of documents with an answer that state that answer."""
    statements = right = reach = with_answer = 0
    for r in records:
        for a, op, b, c in STATEMENT.findall(r.thinking):
            x, y = int(a), int(b)
            value = x + y if op == "+" else x - y if op == "-" else x * y
            statements += 1
            right += value == int(c)
        gold = answers.get(r.id)
        if gold is not None:
            with_answer += 1
            reach += gold in NUMBER.findall(r.thinking)
    return {
        "trajectories": len(records),
        "arithmetic_statements": statements,
        "arithmetic_correct_share": right / statements if statements else None,
        "reaches_document_answer_share": reach / with_answer if with_answer else None,
        "hit_length_limit_share": mean(r.finish_reason == "length" for r in records) if records else None,
        "mean_thinking_words": mean(len(r.thinking.split()) for r in records) if records else None,
    }


def shard_records(aug_dir: Path) -> list[AugmentedRecord]:
    return list(read_augmented(augment_shards(aug_dir)))


def llm_teacher(layout: Layout, scale: Scale) -> dict[str, Any]:
    """The embedded LLM as a teacher: its trajectories' quality on the pool, its vocabulary coverage by the
    student tokenizer, and its own accuracy on the held-out problems under the students' task file."""
    from tpt.reproduce.testbed_tokenizer import word_coverage

    records = shard_records(layout.llm_teacher)
    corpus = {r["id"]: r for r in read_jsonl(layout.corpus("raw"))}
    solved = {i: answer(Problem.from_dict(r["problem"])) for i, r in corpus.items()}
    answers = {i: str(a) for i, a in solved.items() if a is not None}  # facts have none
    quality = trajectory_quality(records, answers)
    quality["student_tokenizer_word_coverage"] = word_coverage([r.thinking for r in records])
    heldout = read_jsonl(layout.heldout)
    order = [r["id"] for r in heldout]
    rows = [r for r in read_jsonl(layout.llm_teacher_eval.with_name(layout.llm_teacher_eval.stem + ".samples.jsonl"))
            if r.get("task") in TASKS]  # fmt: skip
    by_task: dict[str, dict[str, float]] = defaultdict(dict)
    for s in rows:
        by_task[s["task"]][s["id"]] = float(bool(s["correct"].get("accuracy")))
    clusters = [r["computation"] for r in heldout]
    accuracy = {}
    for task, hits in by_task.items():
        res = Results(tokens=(1,), correct=(tuple(hits.get(i, 0.0) for i in order),))
        iv = bootstrap({0: res}, None, clusters, replicates=scale.bootstrap_replicates)["final_accuracy"]
        accuracy[task] = {"mean": iv.value, "ci": [iv.lo, iv.hi]}
    examples = [{"document": corpus[r.id]["text"], "thinking": r.thinking, "finish_reason": r.finish_reason}
                for r in records[:3]]  # fmt: skip
    answers_on_test = [{"task": r["task"], "prompt": r["prompt"], "generation": r["generation"], "gold": r["gold"],
                        "correct": bool(r["correct"].get("accuracy"))} for r in rows[:: max(1, len(rows) // 3)][:3]]  # fmt: skip
    return {"model": records[0].provenance.model if records else None,
            "quality": quality, "accuracy_on_heldout": accuracy, "examples": examples,
            "answers_on_test": answers_on_test}  # fmt: skip


def weak_teacher_accuracy(layout: Layout) -> dict[str, Any]:
    """The weak procedural teacher's own accuracy on the held-out problems, solved from scratch."""
    heldout = {r["id"]: r for r in read_jsonl(layout.heldout)}
    records = shard_records(layout.weak_teacher)
    if not records:
        raise ArtifactError(f"no records under {layout.weak_teacher}/shards; re-run `tpt reproduce`")
    correct = [bool((m := NUMBER.findall(r.thinking)) and m[-1] == heldout[r.id]["answer"]) for r in records]
    return {"accuracy": mean(correct), "n": len(correct)}


def pack_facts(layout: Layout, scale: Scale, seed: int, arm: str) -> dict[str, Any]:
    """Documents and tokens an arm's pack holds, and how many epochs its budget makes of them."""
    d = layout.arm(seed, arm) / "pack"
    try:
        stats, index = read_json(d / "stats.json"), read_json(d / "index.json")
    except ArtifactError:
        return {}
    total = int(index["num_rows"]) * int(index["seq_len"])
    return {
        "documents": stats.get("documents"),
        "document_tokens": stats.get("document_tokens"),
        "thinking_tokens": stats.get("thinking_tokens"),
        "template_tokens": stats.get("template_tokens"),
        "pad_tokens": stats.get("pad_tokens"),
        "row_tokens": total,
        "epochs": scale.tokens_per_arm / total if total else None,
    }
