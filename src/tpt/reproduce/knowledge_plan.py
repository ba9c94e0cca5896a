"""The knowledge world's arms as `tpt` jobs, its pre-registration, and its results through the one estimator.

Arms (every one trains on the same pool of seen-entity documents for the same token budget, thinking tokens
counted in it):
- `raw`: the documents alone;
- `tpt`: the oracle's anaphoric thinking (reproduce/knowledge.py);
- `tpt-shuffled`: the same augment run packed with `tpt pack --control shuffled` (a seeded derangement of
  the trajectories within length buckets: no document keeps its own; pack/controls.py);
- `tpt-filler`: packed with `tpt pack --control filler` (content-free text of each thinking's token count).

`preregistration.json` is written by `prepare`, before any arm trains: primary endpoint, contrasts,
estimator, seeds and the decision rule; its sha256 goes into summary.json, and the verdict lines of the
report are computed from it (`decide`), never written by hand.

The primary contrast's endpoint is the accuracy difference (tpt minus tpt-shuffled) at the budget on the
primary task, pooled over both strata: the shuffled arm's curve on the think endpoint stays near 0 by
construction (its thinking after a document states another trader's numbers), and a factor against a
curve that never rises is not informative (docs/knowledge-world.md). The factor is reported beside it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tpt.core.artifacts import canonical_json, write_atomic, write_json
from tpt.core.errors import ArtifactError
from tpt.reproduce import knowledge
from tpt.reproduce.runner import Job, Step
from tpt.reproduce.testbed_tokenizer import EOS

ARMS = ("raw", "tpt", "tpt-shuffled", "tpt-filler")
TASKS = ("knowledge-think", "knowledge-direct")
PRIMARY = "knowledge-think"
CONTRASTS = {"tpt-vs-tpt-shuffled": ("tpt", "tpt-shuffled"), "tpt-vs-raw": ("tpt", "raw")}
THINK_PROMPT = EOS + "{question}<think>"
DIRECT_PROMPT = EOS + "{direct}"


@dataclass(frozen=True, kw_only=True, slots=True)
class KnowledgeScale:
    tokens_per_arm: int = 200_000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    checkpoints: tuple[int, ...] = (50_000, 100_000, 150_000, 200_000)
    test_per_stratum: int = 100
    model_size: str = "tiny"
    seq_len: int = 128
    batch_tokens: int = 4096
    threads: int = 1
    eval_batch_size: int = 100
    max_new_tokens: int = 32


def root(out: Path) -> Path:
    return out / "worlds" / knowledge.WORLD


def prepare(
    out: Path, config: knowledge.KnowledgeConfig, scale: KnowledgeScale, *, development: dict
) -> dict:
    """Write the pool corpus, the test items, the task file and preregistration.json; return their facts."""
    r = root(out)
    world = knowledge.make_world(config)
    recs = knowledge.records(world)
    write_atomic(r / "corpus.jsonl", "".join(json.dumps(x) + "\n" for x in recs), fsync=False)
    rows = knowledge.test_items(world, per_stratum=scale.test_per_stratum, seed=config.test_seed)
    write_atomic(r / "test.jsonl", "".join(json.dumps(x) + "\n" for x in rows), fsync=False)
    common = {"data": "test.jsonl", "answer_field": "answer", "id_field": "id"}
    tasks = {"tasks": [
        {"name": "knowledge-think", **common, "question_field": "question", "prompt": THINK_PROMPT,
         "stop": ["</think>", EOS], "max_new_tokens": scale.max_new_tokens, "extract": "last_number",
         "description": "the document, then <think> where training placed it; the last number of the thinking"},
        {"name": "knowledge-direct", **common, "question_field": "direct", "prompt": DIRECT_PROMPT,
         "stop": [".", "<think>", EOS], "max_new_tokens": 6, "extract": "first_number",
         "description": "the document, then 'So NAME holds': the first number"},
    ]}  # fmt: skip
    tasks_abs = json.loads(json.dumps(tasks))
    for t in tasks_abs["tasks"]:
        t["data"] = str(r / "test.jsonl")
    write_json(r / "tasks.json", tasks_abs)
    prereg = preregistration(config, scale, development=development)
    write_json(r / "preregistration.json", prereg)
    return {"seen_entities": len(world.seen), "heldout_entities": len(world.heldout),
            "stated_documents": len(world.stated), "test_items": len(rows), "tasks": tasks,
            "preregistration_sha256": prereg_hash(prereg)}  # fmt: skip


def preregistration(config: knowledge.KnowledgeConfig, scale: KnowledgeScale, *, development: dict) -> dict:
    return {
        "world": knowledge.WORLD,
        "primary_endpoint": PRIMARY,
        "primary_contrast": "tpt-vs-tpt-shuffled",
        "contrasts": {k: {"arm": a, "against": b} for k, (a, b) in CONTRASTS.items()},
        "statistic": "accuracy difference at the budget (arm minus against), both strata pooled",
        "secondary_statistic": "data-efficiency factor (tpt.compare.estimator.factor_interval)",
        "estimator": "tpt.compare.estimator.accuracy_difference: t over seed-paired differences + "
        "item variance stratified by stratum, 95%",
        "decision_rule": "gain if the 95% interval of the difference is above 0, loss if below 0, "
        "else no measurable effect",
        "seeds": list(scale.seeds),
        "world_seed": config.world_seed,
        "test_seed": config.test_seed,
        "development_seeds": development,
        "world_config": asdict(config),
        "scale": asdict(scale),
    }


def prereg_hash(prereg: dict) -> str:
    return hashlib.sha256(canonical_json(prereg).encode()).hexdigest()


def arm_dir(out: Path, seed: int, arm: str) -> Path:
    return root(out) / "runs" / f"seed-{seed}" / arm


def jobs(out: Path, scale: KnowledgeScale) -> list[Job]:
    r = root(out)
    plan = []
    for seed in scale.seeds:
        for arm in ARMS:
            d = arm_dir(out, seed, arm)
            steps = []
            if arm == "raw":
                records = r / "runs" / f"seed-{seed}" / "tpt" / "aug"  # raw packs the documents of that run
            else:
                records = d / "aug"
                steps.append(Step(name="augment", argv=("augment", str(r / "corpus.jsonl"), "--output",
                                  str(records), "--backend", "procedural", "--seed", str(seed),
                                  "--shard-size", "100000", "--no-progress")))  # fmt: skip
            pack = ["pack", str(records), "--output", str(d / "pack"), "--tokenizer",
                    str(out / "testbed" / "tokenizer"), "--seq-len", str(scale.seq_len), "--mode",
                    "raw" if arm == "raw" else "tpt", "--seed", str(seed), "--paper-faithful"]  # fmt: skip
            if arm == "tpt-shuffled":
                pack += ["--control", "shuffled", "--control-seed", str(seed)]
            if arm == "tpt-filler":
                pack += ["--control", "filler"]
            train = ["train", str(d / "pack"), "--output", str(d / "train"), "--tokens", str(scale.tokens_per_arm),
                     "--model-size", scale.model_size, "--preset", "testbed", "--batch-tokens",
                     str(scale.batch_tokens), "--seed", str(seed), "--save-at",
                     ",".join(str(t) for t in scale.checkpoints), "--threads", str(scale.threads)]  # fmt: skip
            ev = ["eval", str(d / "train"), "--task-file", str(r / "tasks.json"), "--output",
                  str(d / "eval.jsonl"), "--batch-size", str(scale.eval_batch_size), "--threads",
                  str(scale.threads), "--device", "cpu"]  # fmt: skip
            steps += [Step(name="pack", argv=tuple(pack)), Step(name="train", argv=tuple(train)),
                      Step(name="eval", argv=tuple(ev))]  # fmt: skip
            after = (f"knowledge-seed-{seed}-tpt",) if arm == "raw" else ()
            plan.append(Job(name=f"knowledge-seed-{seed}-{arm}", steps=tuple(steps), threads=scale.threads,
                            after=after))  # fmt: skip
    # raw waits for its seed's tpt augment: put each seed's tpt first
    return sorted(plan, key=lambda j: (j.name.split("-")[2], j.after != ()))


def per_item(out: Path, scale: KnowledgeScale) -> dict[str, Any]:
    """arm -> seed -> task -> {tokens, correct[checkpoint][item]}: everything a factor is computed from."""
    r = root(out)
    order = [json.loads(x)["id"] for x in (r / "test.jsonl").read_text().splitlines() if x.strip()]
    got: dict[str, Any] = {}
    for arm in ARMS:
        for seed in scale.seeds:
            path = arm_dir(out, seed, arm) / "eval.samples.jsonl"
            if not path.is_file():
                raise ArtifactError(f"{path} is missing; re-run `tpt reproduce` to finish the knowledge runs")
            hits: dict[str, dict[int, dict[str, int]]] = {}
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                s = json.loads(line)
                if s.get("task") in TASKS and s.get("tokens_seen"):
                    row = hits.setdefault(s["task"], {}).setdefault(int(s["tokens_seen"]), {})
                    row[s["id"]] = int(bool(s["correct"].get("accuracy")))
            got.setdefault(arm, {})[str(seed)] = {
                task: {"tokens": sorted(by), "correct": [[by[t][i] for i in order] for t in sorted(by)]}
                for task, by in hits.items()
            }
    strata = [i.split("-")[1] for i in order]
    return {"items": order, "strata": strata, "runs": got}


def analyse(items: dict[str, Any], *, n_boot: int = 1000) -> dict[str, Any]:
    """Contrasts and per-arm accuracies from the per-item results alone (summary.json's `per_item`)."""
    from tpt.compare import estimator as est

    levels = tuple(items["strata"])

    def runs(arm: str, task: str) -> list[est.SeedRun]:
        return [est.SeedRun(arm, seed, tuple(float(t) for t in r[task]["tokens"]),
                            tuple(tuple(bool(x) for x in row) for row in r[task]["correct"]), levels)
                for seed, r in sorted(items["runs"][arm].items())]  # fmt: skip

    out: dict[str, Any] = {"primary_endpoint": PRIMARY, "arms": {}, "contrasts": {}}
    for arm in ARMS:
        out["arms"][arm] = {}
        for task in TASKS:
            rs = runs(arm, task)
            budget = est.common_tokens(rs)[-1]
            acc = est.accuracy_interval(rs, budget)
            by = {}
            for stratum in ("seen", "heldout"):
                idx = [k for k, s in enumerate(levels) if s == stratum]
                by[stratum] = sum(sum(r.correct[-1][k] for k in idx) for r in rs) / (len(idx) * len(rs))
            out["arms"][arm][task] = {"final_accuracy": acc.to_json(), "final_by_stratum": by,
                                      "curve": [[t, a] for t, a in est.curve(rs)]}  # fmt: skip
    for name, (a, b) in CONTRASTS.items():
        ra, rb = runs(a, PRIMARY), runs(b, PRIMARY)
        budget = est.common_tokens(ra + rb)[-1]
        diff = est.accuracy_difference(ra, rb, budget)
        fac = est.factor_interval(rb, ra, n_boot=n_boot, seed=0)
        out["contrasts"][name] = {"value": diff.value, "ci": [diff.low, diff.high],
                                  "verdict": est.verdict(diff, 0.0), "statistic": "accuracy difference",
                                  "difference": diff.to_json(), "factor": fac.to_json(),
                                  "factor_verdict": est.verdict(fac, 1.0)}  # fmt: skip
    return out


def decide(contrast: dict[str, Any], prereg: dict[str, Any]) -> str:
    """The report's line for a contrast, from the pre-registered decision rule (difference vs 0)."""
    lo, hi = contrast["ci"]
    word = "gain" if lo > 0 else "loss" if hi < 0 else "no measurable effect"
    return (f"{prereg['world']} world, {prereg['primary_endpoint']}: {word} "
            f"({contrast['value'] * 100:+.1f} pts [{lo * 100:+.1f}, {hi * 100:+.1f}])")  # fmt: skip
