"""The Part 1 experiment: prepare the testbed (tokenizer, corpora, held-out test, task file) and plan the
arms as jobs of ordinary `tpt` commands (augment -> pack -> train -> eval), one job per arm.

Arms, per seed (the seed sets the document sequence, the model init and the data order):
- `tpt`: the TPT corpus (30% of problems as exercises, every document with the expert's thinking),
  N_tpt documents sized so that [document; thinking] fills the token budget about once.
- `raw`: the same document sequence with every answer stated (exercises get their answer back, so the raw
  arm is never shown a question without its answer), continued with fresh documents of the same sequence
  until the same budget is filled once: the paper's setting with abundant unique data.
- `raw-constrained` (extra seeds): exactly the TPT arm's N_tpt documents, answers stated, repeated for as
  many epochs as the same budget takes: the paper's data-constrained setting.
- `tpt-weak` (extra seeds): the TPT corpus explained by the weak teacher.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.artifacts import write_atomic, write_json
from tpt.augment.backends.procedural import think
from tpt.reproduce.presets import Scale
from tpt.reproduce.problems import document
from tpt.reproduce.runner import Job, Step
from tpt.reproduce.testbed import (
    CorpusConfig,
    World,
    document_stream,
    exercise_records,
    heldout_problems,
    make_world,
    write_corpus,
)
from tpt.reproduce.testbed_tokenizer import EOS, save_testbed_tokenizer

ARMS = ("raw", "tpt", "raw-constrained", "tpt-weak")
MODES = ("direct", "think")
# Prompts start after an end-of-sequence token, as every document does in the packed training rows.
DIRECT_PROMPT = EOS + "{question} Answer:"
THINK_PROMPT = EOS + "{question}<think>"


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """Where everything lives under the `tpt reproduce --output` directory."""

    root: Path

    @property
    def testbed(self) -> Path:
        return self.root / "testbed"

    @property
    def tokenizer(self) -> Path:
        return self.testbed / "tokenizer"

    @property
    def heldout(self) -> Path:
        return self.testbed / "heldout.jsonl"

    @property
    def tasks(self) -> Path:
        return self.testbed / "tasks.json"

    def corpus(self, seed: int, name: str) -> Path:
        return self.testbed / "corpus" / f"seed-{seed}" / f"{name}.jsonl"

    def arm(self, seed: int, arm: str) -> Path:
        return self.root / "runs" / f"seed-{seed}" / arm

    def eval_rows(self, seed: int, arm: str) -> Path:
        return self.arm(seed, arm) / "eval.jsonl"

    @property
    def weak_teacher(self) -> Path:
        return self.root / "teacher" / "weak-from-scratch"


def tokens_per_document(
    config: CorpusConfig, world: World, *, sample: int = 4000
) -> dict[str, float]:
    """Mean student tokens per packed sample: raw `doc<eos>` and TPT `doc<think>thinking</think><eos>`."""
    from tokenizers import Tokenizer

    from tpt.reproduce.testbed_tokenizer import tokenizer_json

    tok = Tokenizer.from_str(json.dumps(tokenizer_json()))
    raw = tpt = 0
    rng = random.Random(0)
    for p, ex in itertools.islice(document_stream(config, world, seed=10_000), sample):
        thinking = think(p, stated_answer=None, error_rate=0.0, rng=rng)
        raw += len(tok.encode(document(p, with_answer=True)).ids) + 1
        tpt += (
            len(tok.encode(f"{document(p, with_answer=not ex)}<think>{thinking}</think>").ids) + 1
        )
    return {"raw": raw / sample, "tpt": tpt / sample}


def prepare(layout: Layout, scale: Scale, config: CorpusConfig) -> dict[str, Any]:
    """Write the tokenizer, held-out test set, task file and every seed's corpora; return their facts."""
    world = make_world(config)
    save_testbed_tokenizer(layout.tokenizer)
    rows = heldout_problems(config, world, per_type=scale.test_per_type)
    write_atomic(layout.heldout, "".join(json.dumps(r) + "\n" for r in rows), fsync=False)
    write_atomic(layout.weak_teacher.parent / "heldout-exercises.jsonl",
                 "".join(json.dumps(r) + "\n" for r in exercise_records(rows)), fsync=False)  # fmt: skip
    write_json(layout.tasks, task_file(layout.heldout))
    per_doc = tokens_per_document(config, world)
    budget = scale.tokens_per_arm
    # TPT: fill the budget once; raw: the same budget once, 3% spare so that rounding never forces a repeat.
    num_tpt = math.ceil(budget / per_doc["tpt"])
    num_raw = math.ceil(1.03 * budget / per_doc["raw"])
    corpora = {}
    for seed in scale.seeds:
        corpora[seed] = {
            "tpt": write_corpus(layout.corpus(seed, "tpt"), config, world, seed=seed,
                                num_documents=num_tpt, answers="as_drawn"),
            "raw": write_corpus(layout.corpus(seed, "raw"), config, world, seed=seed,
                                num_documents=num_raw, answers="all"),
        }  # fmt: skip
    return {
        "heldout_problems": len(rows),
        "estimated_tokens_per_document": per_doc,
        "num_tpt_documents": num_tpt,
        "num_raw_documents": num_raw,
        "corpora": corpora,
        "world": {t: {"train_tuples": len(world.train[t]), "heldout_tuples": len(world.heldout[t])}
                  for t in world.train},
    }  # fmt: skip


def task_file(heldout: Path) -> dict[str, Any]:
    """The `tpt eval` task file: the held-out problems answered directly, and thinking first."""
    common = {
        "data": str(heldout),
        "question_field": "question",
        "answer_field": "answer",
        "id_field": "id",
    }
    return {
        "tasks": [
            {"name": "testbed-direct", **common, "prompt": DIRECT_PROMPT, "stop": [".", "<think>"],
             "max_new_tokens": 8, "extract": "first_number",
             "description": "answer at once: the first number after 'Answer:'"},
            {"name": "testbed-think", **common, "prompt": THINK_PROMPT, "stop": ["</think>"],
             "max_new_tokens": 64, "extract": "last_number",
             "description": "think first: the last number before '</think>'"},
        ]
    }  # fmt: skip


def arm_job(layout: Layout, scale: Scale, *, seed: int, arm: str, num_tpt_documents: int) -> Job:
    """The commands of one arm, exactly as a user would type them."""
    d = layout.arm(seed, arm)
    corpus = layout.corpus(seed, "raw" if arm.startswith("raw") else "tpt")
    augment = ["augment", str(corpus), "--output", str(d / "aug"), "--backend", "procedural",
               "--seed", str(seed), "--shard-size", "100000", "--no-progress"]  # fmt: skip
    if arm == "raw-constrained":
        augment += ["--limit", str(num_tpt_documents)]  # the TPT arm's documents, nothing more
    if arm == "tpt-weak":
        augment += ["--engine-arg", f"error_rate={scale.weak_error_rate}"]
    mode = "raw" if arm.startswith("raw") else "tpt"
    pack = ["pack", str(d / "aug"), "--output", str(d / "pack"), "--tokenizer", str(layout.tokenizer),
            "--seq-len", str(scale.seq_len), "--mode", mode, "--seed", str(seed),
            # The expert's shortest trajectories (a one-step sum) are a few words; the other checks stay on.
            "--min-thinking-words", "1"]  # fmt: skip
    train = ["train", str(d / "pack"), "--output", str(d / "train"), "--tokens", str(scale.tokens_per_arm),
             "--model-size", scale.model_size, "--preset", "testbed", "--batch-tokens", str(scale.batch_tokens),
             "--seed", str(seed), "--save-at", ",".join(str(t) for t in scale.checkpoints()),
             "--threads", str(scale.threads_per_arm)]  # fmt: skip
    evaluate = ["eval", str(d / "train"), "--task-file", str(layout.tasks), "--output",
                str(layout.eval_rows(seed, arm)), "--batch-size", str(scale.eval_batch_size),
                "--threads", str(scale.threads_per_arm), "--device", scale.eval_device]  # fmt: skip
    steps = (Step(name="augment", argv=tuple(augment)), Step(name="pack", argv=tuple(pack)),
             Step(name="train", argv=tuple(train)), Step(name="eval", argv=tuple(evaluate)))  # fmt: skip
    return Job(name=f"seed-{seed}-{arm}", steps=steps, threads=scale.threads_per_arm)


def plan_arms(layout: Layout, scale: Scale, *, num_tpt_documents: int) -> list[Job]:
    """Pairs first (raw and TPT of a seed side by side), then the extra arms."""
    jobs = []
    for seed in scale.seeds:
        for arm in ("raw", "tpt"):
            jobs.append(
                arm_job(layout, scale, seed=seed, arm=arm, num_tpt_documents=num_tpt_documents)
            )
    for seed in scale.extra_arm_seeds:
        for arm in ("raw-constrained", "tpt-weak"):
            jobs.append(
                arm_job(layout, scale, seed=seed, arm=arm, num_tpt_documents=num_tpt_documents)
            )
    return jobs


def weak_teacher_command(layout: Layout, scale: Scale) -> list[str]:
    """The weak teacher solving the held-out problems from scratch (exercises: no answer to check against)."""
    return ["augment", str(layout.weak_teacher.parent / "heldout-exercises.jsonl"),
            "--output", str(layout.weak_teacher), "--backend", "procedural", "--seed", "0",
            "--engine-arg", f"error_rate={scale.weak_error_rate}", "--no-progress"]  # fmt: skip
