"""Every recipe parses with the real `tpt` and `torchrun` parsers, and holds the paper's settings (Table 5)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tpt.cli import build_parser


def parse_tpt(argv: list[str]):
    """A `tpt` command line through the real parser (built with the full options of that command)."""
    return build_parser(argv[0]).parse_args(argv)


RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
RECIPES = sorted(RECIPES_DIR.glob("*.sh"))

# [P] Table 5, written out: (GPUs, lr, schedule, warmup, batch tokens, betas, weight decay, clip, budget).
PRETRAIN = dict(
    gpus=32,
    lr=3e-4,
    schedule="constant",
    warmup_steps=100,
    batch_tokens=4 * 2**20,
    betas=(0.9, 0.95),
    weight_decay=0.1,
    grad_clip=1.0,
)
MIDTRAIN = dict(
    schedule="cosine",
    warmup_steps=100,
    batch_tokens=8 * 2**20,
    betas=(0.9, 0.95),
    weight_decay=0.1,
    grad_clip=0.3,
    tokens=100 * 10**9,
)
SFT = dict(
    gpus=8,
    schedule="cosine",
    warmup_steps=400,
    batch_tokens=2**20,
    betas=(0.9, 0.999),
    weight_decay=0.0,
    grad_clip=0.2,
    epochs=5,
    seq_len=32768,
    rope_theta_scale=16.0,
)
EXPECTED = {
    "pretrain_8b_100b.sh": dict(PRETRAIN, command="train", model_size="8b", tokens=100 * 10**9),
    "pretrain_8b_40b_constrained.sh": dict(PRETRAIN, command="train", model_size="8b", tokens=40 * 10**9),
    "midtrain_qwen25_math_1p5b.sh": dict(
        MIDTRAIN, command="train", gpus=16, lr=6e-5, init="/models/Qwen2.5-Math-1.5B"
    ),
    "midtrain_llama32_3b.sh": dict(MIDTRAIN, command="train", gpus=32, lr=4e-5, init="/models/Llama-3.2-3B"),
    "midtrain_qwen25_math_7b.sh": dict(
        MIDTRAIN, command="train", gpus=32, lr=3e-5, init="/models/Qwen2.5-Math-7B"
    ),
    "sft_qwen25_math_1p5b.sh": dict(SFT, command="sft", lr=6e-5),
    "sft_llama32_3b.sh": dict(SFT, command="sft", lr=4e-5),
    "sft_qwen25_math_7b.sh": dict(SFT, command="sft", lr=3e-5),
}
TEACHERS = {
    "data_pretrain.sh": "/models/Qwen3-8B",
    "data_pretrain_constrained.sh": "/models/Qwen3-8B",
    "data_midtrain.sh": "/models/DeepSeek-R1-Distill-Qwen-7B",
}


COMPARE = {"compare_pretrain.sh": ("raw", ["raw", "tpt", "tpt-shuffled"]),
           "compare_midtrain.sh": ("tpt-shuffled", ["tpt-shuffled", "tpt"])}  # fmt: skip


def test_every_recipe_is_covered():
    assert {p.name for p in RECIPES} == set(EXPECTED) | set(TEACHERS) | set(COMPARE)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_is_valid_bash(path):
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    if shutil.which("shellcheck"):
        out = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_training_recipe_matches_table_5(name, commands_of):
    get_args_parser = pytest.importorskip("torch.distributed.run").get_args_parser

    import importlib

    from tpt.cli import COMMANDS
    from tpt.train.config import loop_config

    [argv] = commands_of(RECIPES_DIR / name)
    assert argv[0] == "torchrun"
    split = argv.index("-m")
    launcher = get_args_parser().parse_args(argv[1 : split + 2])  # the real torchrun parser
    assert launcher.module and launcher.training_script == "tpt"
    want = EXPECTED[name]
    assert int(launcher.nnodes) * int(launcher.nproc_per_node) == want["gpus"]

    args = parse_tpt(argv[split + 2 :])  # the real `tpt train` / `tpt sft` parser
    assert args.command == want["command"]
    seq_len = want.get("seq_len", 8192)
    tokens = args.tokens if args.tokens is not None else 10 * 2**30  # sft: epochs, not a budget
    config = importlib.import_module(COMMANDS[args.command][0]).config_from_args(args)  # what the CLI runs
    cfg = loop_config(config, seq_len=seq_len, tokens=tokens)  # the real config checks
    got = dict(
        lr=cfg.optim.lr,
        schedule=cfg.optim.schedule,
        warmup_steps=cfg.optim.warmup_steps,
        batch_tokens=cfg.batch_tokens,
        betas=tuple(cfg.optim.betas),
        weight_decay=cfg.optim.weight_decay,
        grad_clip=cfg.optim.grad_clip,
    )
    assert got == {k: want[k] for k in got}
    if want["command"] == "train":
        assert args.tokens == want["tokens"]
        assert getattr(args, "init", None) == want.get("init") and (
            args.init or args.model_size == want["model_size"]
        )
    else:
        assert (args.epochs, args.seq_len, args.rope_theta_scale) == (
            want["epochs"],
            want["seq_len"],
            want["rope_theta_scale"],
        )


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_data_recipe_uses_the_papers_generation_and_packing(name, commands_of):
    commands = [parse_tpt(argv[1:]) for argv in commands_of(RECIPES_DIR / name)]
    augment, *packs = commands
    assert augment.command == "augment" and augment.model == TEACHERS[name]
    assert (augment.max_doc_tokens, augment.max_thinking_tokens, augment.temperature, augment.top_p) == (
        2048,
        8192,
        0.6,
        0.9,
    )
    assert augment.executor == "ray" and augment.serve == "vllm" and augment.worker_gpus == 1
    assert packs and all(
        p.command == "pack" and p.seq_len == 8192 and p.weights == ["fineweb-edu=0.125"] for p in packs
    )


def _arms(name: str, commands_of) -> tuple:
    augment, *packs = [parse_tpt(argv[1:]) for argv in commands_of(RECIPES_DIR / name)]
    [raw] = [p for p in packs if p.mode == "raw"]
    [tpt] = [p for p in packs if p.mode == "tpt" and p.control is None]
    return augment, tpt, raw


def test_the_abundant_vanilla_arm_reads_the_original_documents(commands_of):
    """[P] §3.1: the vanilla model trains on "the original dataset", as many unique tokens as its budget
    (about 3x the documents of the TPT arm); not the augmented records, which are cut to 2k teacher
    tokens, filtered, and a third of that."""
    from tpt.pack.documents import default_document_text

    augment, tpt, raw = _arms("data_pretrain.sh", commands_of)
    assert tpt.inputs == [augment.output.as_posix()]
    assert raw.inputs == augment.inputs  # the corpus itself: every document, full length
    assert augment.limit is not None  # only the TPT arm's share of it is augmented
    assert default_document_text("raw") == "full" and raw.document_text in (None, "full")
    assert not raw.paper_faithful and raw.validate  # the corpus has no thinking: no thinking filter applies


def test_the_constrained_arms_share_one_document_set(commands_of):
    """[P] §3.2: both arms on one fixed 10B-token sample; the vanilla arm reads that run's original
    documents (full length, unfiltered) and repeats them ~4 times in its 40B budget."""
    augment, tpt, raw = _arms("data_pretrain_constrained.sh", commands_of)
    assert tpt.inputs == raw.inputs == [augment.output.as_posix()]
    assert raw.document_text is None and augment.limit is None


@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_data_recipe_packs_the_shuffled_control_of_its_tpt_arm(name, commands_of):
    """The control arm: the TPT arm's pack with --control shuffled, everything else the same."""
    augment, *packs = [parse_tpt(argv[1:]) for argv in commands_of(RECIPES_DIR / name)]
    [tpt] = [p for p in packs if p.mode == "tpt" and p.control is None]
    [control] = [p for p in packs if p.control == "shuffled"]
    differ = {k for k in vars(tpt) if getattr(tpt, k) != getattr(control, k)}
    assert differ == {"output", "control"} and control.output != tpt.output


@pytest.mark.parametrize("name", sorted(COMPARE))
def test_compare_recipe_scores_every_arm_and_compares_them(name, commands_of):
    """Each arm's run is scored with the same settings, then `tpt compare --arm NAME=EVAL ... --baseline`
    (the agreed interface of tpt compare; parsed by its real parser once it is in this tree)."""
    from tpt.cli import COMMANDS

    baseline, arms = COMPARE[name]
    commands = commands_of(RECIPES_DIR / name)
    evals = [parse_tpt(argv[1:]) for argv in commands if argv[1] == "eval"]
    [compare] = [argv[1:] for argv in commands if argv[1] == "compare"]
    assert commands[-1][1] == "compare"  # the recipe ends with the comparison
    assert (
        len(evals) == len(arms) and len({(e.tasks, e.engine, e.limit, e.max_new_tokens) for e in evals}) == 1
    )
    outputs = [e.output for e in evals]
    given = [compare[i + 1] for i, a in enumerate(compare) if a == "--arm"]
    assert [g.split("=", 1)[0] for g in given] == arms
    assert sorted(g.split("=", 1)[1] for g in given) == sorted(outputs)  # each arm: its run's eval output
    assert compare[compare.index("--baseline") + 1] == baseline and "--output" in compare
    if "compare" in COMMANDS:
        args = parse_tpt(compare)
        assert args.command == "compare"
