"""Word problems of the reasoning testbed: their types, operand spaces, prose and step-by-step solutions.

A problem is plain data (`Problem`): a type, its operands and the words that dress it (a name, an item).
Everything else derives from it: the question in prose, the answer, and the chain of intermediate results
an expert writes down. Level = number of reasoning steps between the question and its answer (0 = a plain
statement of fact, no reasoning).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tpt.core.errors import InputError

NAMES = ("Ann", "Ben", "Cora", "Dan", "Eve", "Finn", "Gus", "Hana")
ITEMS = ("pens", "apples", "cards", "shells", "coins", "stamps", "marbles", "beads")
COLORS = ("red", "blue", "green", "white", "black", "yellow", "brown", "gray")
THINGS = ("box", "lamp", "chair", "clock", "vase", "rug", "desk", "bell")
ROOMS = ("hall", "kitchen", "garden", "attic", "office", "cellar", "study", "porch")

OPERAND_RANGE = range(2, 8)
"""Operands 2..7: the pilot found that larger ranges do not learn within a CPU budget."""
PAIR_RANGE = range(1, 9)
"""For types that add two counts before multiplying, a and b lie in 1..8 with a + b <= 9."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    """One intermediate result: `left op right = value`."""

    left: int
    op: str
    right: int
    value: int

    def render(self) -> str:
        return f"{self.left} {self.op} {self.right} = {self.value}."


@dataclass(frozen=True, kw_only=True, slots=True)
class ProblemType:
    """A family of problems with the same structure and number of reasoning steps."""

    name: str
    level: int
    arity: int
    question: str
    """Prose with {name} {item} and {a} {b} {c} {d} placeholders."""
    statement: str
    """How the document states the outcome, with {name} {item} {answer}."""
    ops: Callable[[tuple[int, ...]], list[tuple[str, str, str]]]
    """The solution as (left, op, right) references: an operand letter or s1/s2 for earlier results."""
    tuples: Callable[[], list[tuple[int, ...]]]


def _grid(n: int) -> Callable[[], list[tuple[int, ...]]]:
    return lambda: list(itertools.product(OPERAND_RANGE, repeat=n))


def _pairs_then(n: int) -> Callable[[], list[tuple[int, ...]]]:
    def tuples() -> list[tuple[int, ...]]:
        pairs = [(a, b) for a in PAIR_RANGE for b in PAIR_RANGE if a + b <= 9]
        return [p + rest for p in pairs for rest in itertools.product(OPERAND_RANGE, repeat=n)]

    return tuples


HAS = "So {name} has {answer} {item}."
TYPES: dict[str, ProblemType] = {
    t.name: t
    for t in (
        ProblemType(
            name="add1",
            level=1,
            arity=2,
            statement=HAS,
            tuples=_grid(2),
            question="{name} has {a} {item} and finds {b} more {item}. How many {item} does {name} have?",
            ops=lambda o: [("a", "+", "b")],
        ),
        ProblemType(
            name="mul1",
            level=1,
            arity=2,
            statement=HAS,
            tuples=_grid(2),
            question="{name} has {a} bags with {b} {item} in each bag. How many {item} does {name} have?",
            ops=lambda o: [("a", "x", "b")],
        ),
        ProblemType(
            name="mul_add",
            level=2,
            arity=3,
            statement=HAS,
            tuples=_grid(3),
            question="{name} has {a} bags with {b} {item} in each bag and {c} loose {item}. "
            "How many {item} does {name} have?",
            ops=lambda o: [("a", "x", "b"), ("s1", "+", "c")],
        ),
        ProblemType(
            name="add_mul",
            level=2,
            arity=3,
            statement=HAS,
            tuples=_pairs_then(1),
            question="{name} has {a} red bags and {b} blue bags with {c} {item} in each bag. "
            "How many {item} does {name} have?",
            ops=lambda o: [("a", "+", "b"), ("s1", "x", "c")],
        ),
        ProblemType(
            name="two_prod",
            level=3,
            arity=4,
            statement=HAS,
            tuples=_grid(4),
            question="{name} has {a} bags with {b} {item} in each bag and {c} boxes with {d} {item} in each box. "
            "How many {item} does {name} have?",
            ops=lambda o: [("a", "x", "b"), ("c", "x", "d"), ("s1", "+", "s2")],
        ),
        ProblemType(
            name="chain3",
            level=3,
            arity=4,
            statement=HAS,
            tuples=_pairs_then(2),
            question="{name} has {a} red bags and {b} blue bags with {c} {item} in each bag, and {d} loose {item}. "
            "How many {item} does {name} have?",
            ops=lambda o: [("a", "+", "b"), ("s1", "x", "c"), ("s2", "+", "d")],
        ),
    )
}
FACT = "fact"
"""Level 0: a statement of fact (where a thing is), no reasoning; its `operands` index the word lists."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """One problem instance; `as_dict`/`from_dict` are its form in corpus records (`problem` field)."""

    type: str
    operands: tuple[int, ...]
    name: str
    item: str

    @property
    def level(self) -> int:
        return 0 if self.type == FACT else TYPES[self.type].level

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "operands": list(self.operands),
            "name": self.name,
            "item": self.item,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Problem:
        try:
            problem = cls(
                type=str(d["type"]),
                operands=tuple(int(x) for x in d["operands"]),
                name=str(d["name"]),
                item=str(d["item"]),
            )
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"malformed testbed problem {d!r}: {exc!r}") from None
        arity = 3 if problem.type == FACT else TYPES[problem.type].arity if problem.type in TYPES else -1
        if arity != len(problem.operands):
            raise InputError(f"testbed problem {d!r}: unknown type or wrong number of operands")
        return problem


def question(p: Problem) -> str:
    """The problem in prose, without its answer (for a fact: the statement itself)."""
    if p.type == FACT:
        color, thing, room = p.operands
        return f"The {COLORS[color]} {THINGS[thing]} is in the {ROOMS[room]}."
    values = dict(zip("abcd", p.operands, strict=False))
    return TYPES[p.type].question.format(name=p.name, item=p.item, **values)


def solve(
    p: Problem, *, wrong_step: int | None = None, wrong_delta: int = 1, misconception: bool = False
) -> list[Step]:
    """The chain of intermediate results; with `wrong_step`, that step's result is off by `wrong_delta`
    and later steps build on the wrong value (a careless solver, not a random final answer). With
    `misconception`, 7 times a number is taken for 8 times it, every time (a consistent error)."""
    if p.type == FACT:
        return []
    env: dict[str, int] = dict(zip("abcd", p.operands, strict=False))
    steps = []
    for i, (left, op, right) in enumerate(TYPES[p.type].ops(p.operands)):
        lv, rv = env[left], env[right]
        value = lv + rv if op == "+" else lv * rv
        if misconception and op == "x" and 7 in (lv, rv):
            value = lv * 8 if rv == 7 else 8 * rv
        if i == wrong_step:
            value += wrong_delta
        env[f"s{i + 1}"] = value
        steps.append(Step(left=lv, op=op, right=rv, value=value))
    return steps


def answer(p: Problem) -> int | None:
    """The correct final result, or None for a statement of fact."""
    steps = solve(p)
    return steps[-1].value if steps else None


def statement(p: Problem, result: int) -> str:
    return TYPES[p.type].statement.format(name=p.name, item=p.item, answer=result)


def working(p: Problem) -> str:
    """The solution written out inline, as a textbook's worked example does: `8 x 6 = 48. 48 + 7 = 55.`"""
    return " ".join(step.render() for step in solve(p))


def document(p: Problem, *, with_answer: bool, worked: bool = False) -> str:
    """The document text: the question followed by its answer, or the question alone (an exercise).

    `worked`: a worked example, the working shown inline before the answer
    (`... How many pens does Dan have? Solution: 8 x 6 = 48. 48 + 7 = 55. Answer: 55.`).
    """
    q = question(p)
    if p.type == FACT or not with_answer:
        return q
    if worked:
        return f"{q} {SOLUTION} {working(p)} Answer: {answer(p)}."
    return f"{q} Answer: {answer(p)}."


SOLUTION = "Solution:"
"""What opens a worked solution in a document, and what the chain-of-thought test prompt ends with."""


def fact_paraphrase(p: Problem) -> str:
    color, thing, room = p.operands
    return f"The {THINGS[thing]} that is {COLORS[color]} can be found in the {ROOMS[room]}."


def vocabulary() -> list[str]:
    """Every word and symbol the testbed writes (documents, thinking, prompts), for the word-level tokenizer."""
    words: set[str] = set(NAMES) | set(ITEMS) | set(COLORS) | set(THINGS) | set(ROOMS)
    templates = [t.question for t in TYPES.values()] + [
        HAS,
        "Answer:",
        SOLUTION,
        "x + = .",
        "The {c} {t} that is {c} can be found in the {r}.",
    ]
    for text in templates:
        for word in text.replace("{", " {").replace("}", "} ").split():
            if not word.startswith("{"):
                words.add(word.strip(".,?:"))
                words.update(ch for ch in word if ch in ".,?:")
    words.discard("")
    return sorted(words)
