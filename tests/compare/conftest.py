"""Real tiny runs for the `tpt compare` tests: two arms x two seeds of `tpt train` on CPU, scored by `tpt eval`.

The packs are tests/train's learnable toy (`a + b = c .` documents, a word-level tokenizer); the arms train on
two different packs, each with seeds 0 and 1, checkpoints at 1k, 2k, 4k and 8k tokens (~1 min in all). The
test task asks `a + b =` for 30 sums. Layout (the tpt arm as `tpt reproduce` lays out its arms):

    runs/{arm}-s{seed}/train        the run directory
    runs/tpt-s{seed}/eval.jsonl     the tpt arm, each run scored into a file beside its run directory
    eval/raw.jsonl                  the raw arm, both runs scored into one file
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

TRAIN_CONFTEST = Path(__file__).resolve().parents[1] / "train" / "conftest.py"
TOKENS, SAVE_AT, SEEDS = 8192, (1024, 2048, 4096), (0, 1)


def _train_fixtures():
    """tests/train/conftest.py as a module (test modules cannot import a conftest under importlib mode)."""
    spec = importlib.util.spec_from_file_location("tpt_tests_train_conftest", TRAIN_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tpt.evaluate.stage import EvalConfig
    from tpt.evaluate.stage import run as evaluate
    from tpt.train.config import TrainConfig, testbed
    from tpt.train.stage import run as train

    make_pack = _train_fixtures().make_pack
    root = tmp_path_factory.mktemp("compare")
    packs = {arm: make_pack(root / f"pack-{arm}", seed=k) for k, arm in enumerate(("raw", "tpt"))}
    preset = testbed().override(batch_tokens=512, warmup_steps=2)
    for arm, pack in packs.items():
        for seed in SEEDS:
            train(TrainConfig(data_dir=pack, output=root / "runs" / f"{arm}-s{seed}" / "train", tokens=TOKENS,
                              seed=seed, save_at=SAVE_AT, threads=1, preset=preset))  # fmt: skip
    rng = random.Random(0)
    items = []
    for i in range(30):
        a, b = rng.randint(0, 4), rng.randint(0, 4)
        items.append({"id": f"q{i}", "question": f"{a} + {b} =", "answer": a + b})
    (root / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in items), encoding="utf-8")
    task = {"name": "sums", "data": str(root / "items.jsonl"), "id_field": "id", "prompt": "{question}",
            "stop": [" ."], "max_new_tokens": 3, "extract": "first_number"}  # fmt: skip
    (root / "task.json").write_text(json.dumps(task), encoding="utf-8")
    tasks = (str(root / "task.json"),)
    raw_models = tuple(str(root / "runs" / f"raw-s{s}" / "train") for s in SEEDS)
    evaluate(
        EvalConfig(models=raw_models, tasks=tasks, output=root / "eval" / "raw.jsonl", threads=1), log=None
    )
    for s in SEEDS:
        run_dir = root / "runs" / f"tpt-s{s}"
        evaluate(EvalConfig(models=(str(run_dir / "train"),), tasks=tasks, output=run_dir / "eval.jsonl", threads=1),
                 log=None)  # fmt: skip
    return root
