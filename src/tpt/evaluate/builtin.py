"""The built-in benchmarks and their protocols (paper §3.7), over the data bundled in tpt/data/eval.

- gsm8k: 5-shot CoT from GSM8K train (a fixed seeded draw); `#### N` (accuracy) and the last number
  (accuracy_flexible), compared as numbers.
- math500: 4-shot CoT with 4 problems written for tpt (MATH train is not bundled); the last `\\boxed{}`,
  compared after LaTeX normalization.
- mmlu: 2-shot from MMLU dev (the first 2 of the same subject); "answer is (X)", compared as letters.
  Not the paper's "2-shot CoT": MMLU dev has no rationales and the paper gives none, so the exemplars
  are answer-only (`Let's think step by step. The answer is (B).`); the protocol is named for that.
- arc_challenge: 2-shot, answer-only exemplars as mmlu; ARC has a test split only, so 4 test items
  (seeded) are held out as the exemplar pool and never scored; "answer is (X)".
- svamp: 5-shot CoT with the GSM8K train exemplars (SVAMP has no train split); as gsm8k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tpt.core.registry import Registry
from tpt.evaluate.spec import DataSource, FewShotSpec, TaskSpec

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "eval"
SEED = 1234
PAPER_MAX_NEW_TOKENS = 2048
CHAT_STOPS = ("</s>", "<|im_end|>", "<|endoftext|>")
GSM8K_STRICT = r"regex:#### (\-?[0-9\.\,]+)"

# MATH's train split is not bundled, so the 4 exemplars are problems written for tpt in the MATH style
# (none appears in MATH-500; a test checks it). Each solution ends with its answer in \boxed{}.
MATH_EXEMPLARS: tuple[dict[str, str], ...] = (
    {
        "problem": "What is the value of $x$ if $3x - 7 = 11$?",
        "solution": "Adding 7 to both sides gives $3x = 18$, so $x = \\frac{18}{3} = 6$.\n"
        "The final answer is $\\boxed{6}$.",
        "answer": "6",
    },
    {
        "problem": "Compute $\\frac{2}{3} + \\frac{1}{4}$. Express your answer as a common fraction.",
        "solution": "Over the common denominator 12, $\\frac{2}{3} = \\frac{8}{12}$ and $\\frac{1}{4} = "
        "\\frac{3}{12}$, so the sum is $\\frac{8+3}{12} = \\frac{11}{12}$.\n"
        "The final answer is $\\boxed{\\frac{11}{12}}$.",
        "answer": "\\frac{11}{12}",
    },
    {
        "problem": "How many positive divisors does $72$ have?",
        "solution": "Since $72 = 2^3 \\cdot 3^2$, a divisor is $2^a 3^b$ with $0 \\le a \\le 3$ and "
        "$0 \\le b \\le 2$, so there are $(3+1)(2+1) = 12$ of them.\nThe final answer is $\\boxed{12}$.",
        "answer": "12",
    },
    {
        "problem": "Find all real numbers $x$ such that $x^2 - 7x + 10 < 0$. Express your answer in "
        "interval notation.",
        "solution": "Factoring, $x^2 - 7x + 10 = (x-2)(x-5)$. A product of two factors is negative when "
        "they have opposite signs, which happens exactly for $2 < x < 5$.\n"
        "The final answer is $\\boxed{(2,5)}$.",
        "answer": "(2,5)",
    },
)


def _gsm8k_exemplars() -> FewShotSpec:
    return FewShotSpec(
        k=5,
        pool=DataSource(path=str(DATA_DIR / "gsm8k" / "train.jsonl"), reader="gsm8k"),
        order="seeded",
        seed=SEED,
    )


def gsm8k() -> TaskSpec:
    return TaskSpec(
        name="gsm8k",
        description="GSM8K test (1319), 5-shot chain of thought from train (lm-eval `gsm8k` format)",
        data=DataSource(path=str(DATA_DIR / "gsm8k" / "test.jsonl"), reader="gsm8k"),
        prompt="Question: {question}\nAnswer:",
        target="{answer}",
        fewshot=_gsm8k_exemplars(),
        stop=("Question:", "\n\n", *CHAT_STOPS),
        max_new_tokens=PAPER_MAX_NEW_TOKENS,
        metrics=(("accuracy", GSM8K_STRICT), ("accuracy_flexible", "last_number")),
        compare="numeric",
    )


def svamp() -> TaskSpec:
    """GSM8K's protocol (prompt, exemplars, stops, scoring) on SVAMP's questions."""
    return replace(
        gsm8k(),
        name="svamp",
        description="SVAMP (1000), 5-shot chain of thought with the GSM8K train exemplars",
        data=DataSource(path=str(DATA_DIR / "svamp" / "SVAMP.json"), reader="svamp"),
    )


def math500() -> TaskSpec:
    return TaskSpec(
        name="math500",
        description="MATH-500 (500), 4-shot chain of thought, answers in \\boxed{}, LaTeX-normalized",
        data=DataSource(path=str(DATA_DIR / "math500" / "test.jsonl"), reader="math500"),
        prompt="Problem:\n{problem}\n\nSolution:",
        target="{solution}",
        target_delimiter="\n",
        fewshot=FewShotSpec(k=4, inline=MATH_EXEMPLARS),
        stop=("Problem:", *CHAT_STOPS),
        max_new_tokens=PAPER_MAX_NEW_TOKENS,
        metrics=(("accuracy", "boxed"),),
        compare="math",
    )


_MC_PROMPT = "Question: {question}\n{choices}\nAnswer: Let's think step by step."
_MC_TARGET = "The answer is ({answer})."


def mmlu() -> TaskSpec:
    return TaskSpec(
        name="mmlu",
        description="MMLU test (14042), 2-shot with answer-only exemplars from dev (same subject) after "
        "a think-step-by-step cue (not the paper's CoT: the exemplars hold no reasoning)",
        data=DataSource(path=str(DATA_DIR / "mmlu" / "test.jsonl"), reader="mmlu"),
        preamble="The following are multiple choice questions (with answers) about {subject_name}.\n\n",
        prompt=_MC_PROMPT,
        target=_MC_TARGET,
        fewshot=FewShotSpec(
            k=2,
            pool=DataSource(path=str(DATA_DIR / "mmlu" / "dev.jsonl"), reader="mmlu"),
            match_field="subject",
        ),
        stop=("Question:", *CHAT_STOPS),
        max_new_tokens=PAPER_MAX_NEW_TOKENS,
        metrics=(("accuracy", "mc_letter"),),
        compare="letter",
    )


def arc_challenge() -> TaskSpec:
    return TaskSpec(
        name="arc_challenge",
        description="ARC-Challenge test (1172 - 4 held-out exemplars), 2-shot with answer-only exemplars",
        data=DataSource(path=str(DATA_DIR / "arc_challenge" / "test.jsonl"), reader="arc"),
        prompt=_MC_PROMPT,
        target=_MC_TARGET,
        fewshot=FewShotSpec(k=2, holdout=4, seed=SEED),
        stop=("Question:", *CHAT_STOPS),
        max_new_tokens=PAPER_MAX_NEW_TOKENS,
        metrics=(("accuracy", "mc_letter"),),
        compare="letter",
    )


TASKS: Registry[Callable[[], TaskSpec]] = Registry(
    "tasks",
    {name: f"tpt.evaluate.builtin:{name}" for name in ("gsm8k", "math500", "mmlu", "arc_challenge", "svamp")},
    kind="task",
    hint="add your own with --task-file FILE",
)
"""name -> "module:factory", a factory () -> TaskSpec. The built-ins are this module's; a third-party
package adds a task with an entry point in group `tpt.tasks` (docs/plugins.md)."""
BUILTIN_TASKS = TASKS
"""The same registry, by its older name (what `tpt eval --list-tasks` lists)."""


def get_builtin(name: str) -> TaskSpec:
    """A registered task by name; ConfigError with a did-you-mean for an unknown one."""
    return TASKS.get_or_raise(name)()
