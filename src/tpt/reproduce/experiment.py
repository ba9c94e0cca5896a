"""The Part 1 experiment: prepare the testbed (tokenizer, pool corpora, held-out test, task file) and plan
the arms as jobs of ordinary `tpt` commands (augment -> pack -> train -> eval), one job per arm and seed.

Every arm trains on the same pool of documents (`testbed.pool`, every document stating its answer, a
share `worked_fraction` of them (0.5 in the presets) worked examples that show their working inline) for the same token budget, thinking
tokens counted in it, and is scored by the same `tpt eval` task file; the primary endpoint is named in the
scale before anything is trained. Arms differ only in the thinking added to each document:
- `raw`: none (the documents alone);
- `tpt`: the procedural expert's, an oracle that reads the structured problem (an upper bound on teacher
  quality);
- `tpt-llm`: the embedded SmolLM2-135M-Instruct's, with the paper's prompt and decoding, from the text
  alone, one trajectory per pool document (job `teacher-llm`, shared by every seed);
- `tpt-shuffled`: the expert's thinking of another pool document (same thinking tokens, wrong content);
- `tpt-exercises` (`--scale full`): the oracle arm with 30% of the problems written as exercises;
- `tpt-weak` (`--scale full`): a weak procedural teacher with a consistent misconception;
- `tpt-filler` (`--scale full`): the expert's trajectory with every token replaced by a filler word (the
  same thinking tokens, no content);
- `raw-abundant` / `tpt-abundant` (`--scale full`): the paper's abundant-data setting with the oracle
  teacher, outside the pool: each arm reads fresh documents of the seed's sequence until its budget is
  filled once (the TPT arm's documents are a prefix of the raw arm's), so raw sees about twice the unique
  documents; the factor of `tpt-abundant` is against `raw-abundant`.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.artifacts import write_atomic, write_json
from tpt.reproduce.presets import Scale
from tpt.reproduce.problems import SOLUTION
from tpt.reproduce.runner import Job, Step
from tpt.reproduce.testbed import (
    CorpusConfig,
    document_stream,
    exercise_records,
    heldout_problems,
    make_world,
    pool,
    write_corpus,
)
from tpt.reproduce.testbed_tokenizer import EOS, save_testbed_tokenizer

ARMS = (
    "raw",
    "tpt",
    "tpt-llm",
    "tpt-shuffled",
    "tpt-filler",
    "tpt-exercises",
    "tpt-weak",
    "raw-abundant",
    "tpt-abundant",
)
TEACHER = {"raw": "none", "tpt": "oracle", "tpt-llm": "embedded-llm", "tpt-shuffled": "shuffled",
           "tpt-exercises": "oracle", "tpt-weak": "weak", "raw-abundant": "none", "tpt-abundant": "oracle",
           "tpt-filler": "filler"}  # fmt: skip
"""What wrote each arm's thinking (summary.json's `teacher`)."""
BASELINE = {"tpt-abundant": "raw-abundant"}
"""The raw arm each TPT arm's factor is against (default: `raw`); raw arms have none."""
RAW_ARMS = ("raw", "raw-abundant")
# Prompts start after an end-of-sequence token, as every document does in the packed training rows.
COT_PROMPT = EOS + "{question} " + SOLUTION
DIRECT_PROMPT = EOS + "{question} Answer:"
THINK_PROMPT = EOS + "{question}<think>"
LLM_TEACHER_JOB = "teacher-llm"


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

    @property
    def primary_task(self) -> Path:
        """The primary endpoint's task alone, as written in tasks.json (what the LLM teacher is scored by)."""
        return self.testbed / "tasks-primary.json"

    def corpus(self, name: str) -> Path:
        return self.testbed / "corpus" / f"{name}.jsonl"

    def arm(self, seed: int, arm: str) -> Path:
        return self.root / "runs" / f"seed-{seed}" / arm

    def eval_rows(self, seed: int, arm: str) -> Path:
        return self.arm(seed, arm) / "eval.jsonl"

    @property
    def llm_teacher(self) -> Path:
        """The embedded LLM's thinking for every pool document (`tpt augment` output)."""
        return self.root / "teacher" / "llm-pool"

    @property
    def llm_teacher_eval(self) -> Path:
        """The embedded LLM scored on the held-out problems by the same task file as the students."""
        return self.root / "teacher" / "llm-eval.jsonl"

    @property
    def weak_teacher(self) -> Path:
        return self.root / "teacher" / "weak-from-scratch"


def prepare(layout: Layout, scale: Scale, config: CorpusConfig) -> dict[str, Any]:
    """Write the tokenizer, held-out test set, task file and the pool's corpora; return their facts."""
    world = make_world(config)
    save_testbed_tokenizer(layout.tokenizer)
    rows = heldout_problems(config, world, per_level=scale.test_per_level, seed=config.test_seed)
    write_atomic(layout.heldout, "".join(json.dumps(r) + "\n" for r in rows), fsync=False)
    write_atomic(layout.weak_teacher.parent / "heldout-exercises.jsonl",
                 "".join(json.dumps(r) + "\n" for r in exercise_records(rows)), fsync=False)  # fmt: skip
    tasks = task_file(layout.heldout, scale)
    write_json(layout.tasks, tasks)
    write_json(
        layout.primary_task, {"tasks": [t for t in tasks["tasks"] if t["name"] == scale.primary_endpoint]}
    )
    docs = pool(config, world)
    corpora = {kind: write_corpus(layout.corpus(kind), docs, kind=kind) for kind in ("raw", "exercises")}
    for seed in scale.seeds:
        name = f"shuffled-seed-{seed}"
        corpora[name] = write_corpus(layout.corpus(name), docs, kind="shuffled", seed=seed)
    abundant = {}
    if scale.ablation_seeds:
        per_doc = tokens_per_document(config, world)
        abundant = {"raw": math.ceil(1.03 * scale.tokens_per_arm / per_doc["raw"]),
                    "tpt": math.ceil(scale.tokens_per_arm / per_doc["tpt"]), "tokens_per_document": per_doc}  # fmt: skip
        for seed in scale.ablation_seeds:
            stream = list(itertools.islice(document_stream(config, world, seed=seed), abundant["raw"]))
            corpora[f"abundant-raw-seed-{seed}"] = write_corpus(
                layout.corpus(f"abundant-raw-seed-{seed}"), stream, kind="raw"
            )
            corpora[f"abundant-tpt-seed-{seed}"] = write_corpus(layout.corpus(f"abundant-tpt-seed-{seed}"),
                                                                stream[: abundant["tpt"]], kind="raw")  # fmt: skip
    distinct = {}
    for r in rows:
        distinct.setdefault(f"level-{r['level']}", set()).add(r["computation"])
    return {
        "heldout_problems": len(rows),
        "heldout_distinct_computations": {k: len(v) for k, v in sorted(distinct.items())},
        "pool_documents": len(docs),
        "pool_distinct_texts": len({d.problem for d in docs}),
        "corpora": corpora,
        "abundant_documents": abundant,
        "world": {t: {"train_tuples": len(world.train[t]), "heldout_tuples": len(world.heldout[t])}
                  for t in world.train},
    }  # fmt: skip


def tokens_per_document(config: CorpusConfig, world: Any, *, sample: int = 2000) -> dict[str, float]:
    """Mean student tokens per packed sample: raw `doc<eos>` and TPT `doc<think>thinking</think><eos>`."""
    from tokenizers import Tokenizer

    from tpt.reproduce.problems import document
    from tpt.reproduce.teacher import think
    from tpt.reproduce.testbed_tokenizer import tokenizer_json

    tok = Tokenizer.from_str(json.dumps(tokenizer_json()))
    raw = tpt = 0
    rng = random.Random(0)
    for d in itertools.islice(document_stream(config, world, seed=10_000), sample):
        text = document(d.problem, with_answer=True, worked=d.worked)
        thinking = think(d.problem, stated_answer=None, error_rate=0.0, rng=rng)
        raw += len(tok.encode(text).ids) + 1
        tpt += len(tok.encode(f"{text}<think>{thinking}</think>").ids) + 1
    return {"raw": raw / sample, "tpt": tpt / sample}


def task_file(heldout: Path, scale: Scale) -> dict[str, Any]:
    """The `tpt eval` task file every arm (and the LLM teacher) is scored by."""
    common = {
        "data": str(heldout),
        "question_field": "question",
        "answer_field": "answer",
        "id_field": "id",
    }
    return {
        "tasks": [
            {"name": "testbed-cot", **common, "prompt": COT_PROMPT, "stop": ["<think>", EOS],
             "max_new_tokens": scale.cot_max_new_tokens, "extract": r"last_regex:Answer:\s*(-?\d+)",
             "description": "chain of thought: work the problem out after 'Solution:' as the worked examples "
                            "do, then the number after the last 'Answer:'"},
            {"name": "testbed-direct", **common, "prompt": DIRECT_PROMPT, "stop": [".", "<think>"],
             "max_new_tokens": 8, "extract": "first_number", "loglik_target": " {answer}.",
             "description": "answer at once: the first number after 'Answer:'; also the log-likelihood of the "
                            "gold answer there (gold_loglik, a low-variance measure)"},
            {"name": "testbed-think", **common, "prompt": THINK_PROMPT, "stop": ["</think>"],
             "max_new_tokens": scale.cot_max_new_tokens + 16, "extract": "last_number",
             "description": "think first: the last number before '</think>'"},
        ]
    }  # fmt: skip


def arm_names(scale: Scale, seed: int) -> list[str]:
    names = ["raw", "tpt", "tpt-shuffled"]
    if scale.llm_teacher:
        names.append("tpt-llm")
    if seed in scale.ablation_seeds:
        names += ["tpt-filler", "tpt-exercises", "tpt-weak", "raw-abundant", "tpt-abundant"]
    return names


def arm_job(layout: Layout, scale: Scale, *, seed: int, arm: str) -> Job:
    """The commands of one arm, exactly as a user would type them."""
    d = layout.arm(seed, arm)
    steps = []
    if arm == "tpt-llm":
        records = layout.llm_teacher  # written once for every seed by the teacher-llm job
    else:
        corpus = {"tpt-shuffled": f"shuffled-seed-{seed}", "tpt-exercises": "exercises",
                  "raw-abundant": f"abundant-raw-seed-{seed}", "tpt-abundant": f"abundant-tpt-seed-{seed}"}.get(arm, "raw")  # fmt: skip
        augment = ["augment", str(layout.corpus(corpus)), "--output", str(d / "aug"), "--backend", "procedural",
                   "--seed", str(seed), "--shard-size", "100000", "--no-progress"]  # fmt: skip
        if arm == "tpt-weak":
            augment += ["--engine-arg", "misconception=1"]
        if arm == "tpt-filler":
            augment += ["--engine-arg", "filler=1"]
        steps.append(Step(name="augment", argv=tuple(augment)))
        records = d / "aug"
    mode = "raw" if arm in RAW_ARMS else "tpt"
    # No thinking filters (the paper filters nothing): every arm trains on every pool document.
    pack = ["pack", str(records), "--output", str(d / "pack"), "--tokenizer", str(layout.tokenizer),
            "--seq-len", str(scale.seq_len), "--mode", mode, "--seed", str(seed), "--paper-faithful"]  # fmt: skip
    train = ["train", str(d / "pack"), "--output", str(d / "train"), "--tokens", str(scale.tokens_per_arm),
             "--model-size", scale.model_size, "--preset", "testbed", "--batch-tokens", str(scale.batch_tokens),
             "--seed", str(seed), "--save-at", ",".join(str(t) for t in scale.checkpoints()),
             "--threads", str(scale.threads_per_arm)]  # fmt: skip
    evaluate = ["eval", str(d / "train"), "--task-file", str(layout.tasks), "--output",
                str(layout.eval_rows(seed, arm)), "--batch-size", str(scale.eval_batch_size),
                "--threads", str(scale.threads_per_arm), "--device", scale.eval_device]  # fmt: skip
    steps += [Step(name="pack", argv=tuple(pack)), Step(name="train", argv=tuple(train)),
              Step(name="eval", argv=tuple(evaluate))]  # fmt: skip
    after = (LLM_TEACHER_JOB,) if arm == "tpt-llm" else ()
    return Job(name=f"seed-{seed}-{arm}", steps=tuple(steps), threads=scale.threads_per_arm, after=after)


def llm_teacher_job(layout: Layout, scale: Scale) -> Job:
    """The embedded SmolLM2 writing thinking for every pool document (the paper's template and decoding,
    the document text alone), then scored on the held-out problems by the students' primary task (the
    same definition as in tasks.json; the secondary tasks are left out for time)."""
    augment = ["augment", str(layout.corpus("raw")), "--output", str(layout.llm_teacher),
               "--max-thinking-tokens", str(scale.llm_max_thinking_tokens), "--batch-size", str(scale.llm_batch_size),
               "--seed", "0", "--shard-size", "100000", "--no-progress"]  # fmt: skip
    evaluate = ["eval", "embedded", "--task-file", str(layout.primary_task), "--output", str(layout.llm_teacher_eval),
                "--batch-size", str(scale.llm_batch_size), "--threads", str(scale.threads_per_arm),
                "--device", scale.eval_device, "--dtype", "bfloat16"]  # fmt: skip
    return Job(name=LLM_TEACHER_JOB, steps=(Step(name="augment", argv=tuple(augment)),
                                            Step(name="eval", argv=tuple(evaluate))), threads=scale.threads_per_arm)  # fmt: skip


def plan_arms(layout: Layout, scale: Scale) -> list[Job]:
    """The LLM teacher first (the longest job, and the LLM arms wait for it), then each seed's arms, the
    LLM arms last so that the teacher has finished by the time they start."""
    jobs = [llm_teacher_job(layout, scale)] if scale.llm_teacher else []
    later = []
    for seed in scale.seeds:
        for arm in arm_names(scale, seed):
            (later if arm == "tpt-llm" else jobs).append(arm_job(layout, scale, seed=seed, arm=arm))
    return jobs + later


def weak_teacher_command(layout: Layout, scale: Scale) -> list[str]:
    """The weak teacher solving the held-out problems from scratch (exercises: no answer to check against)."""
    return ["augment", str(layout.weak_teacher.parent / "heldout-exercises.jsonl"),
            "--output", str(layout.weak_teacher), "--backend", "procedural", "--seed", "0",
            "--engine-arg", "misconception=1", "--no-progress"]  # fmt: skip
