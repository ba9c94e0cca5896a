"""The knowledge world: invented traders whose derived facts need the facts of their own document.

Issue 23, item 1. In the arithmetic world a shuffled trajectory still teaches correct, self-contained
arithmetic, so the shuffled control equals the treatment by construction. Here the oracle's thinking is
about *its* document and refers to it only through the document: anaphora ("this trader", "they") and
numbers restated from the document. Attached to another document (the shuffled control) it teaches a
wrong binding: document Y followed by "they keep 3 crates of 4 jars ... they hold 12 jars", where Y's
trader keeps other crates. So the pairing is what carries the content, which is what a positive control
for "thinking about this document" needs.

    entity   (name, city, crates A, jars per crate B), drawn from the world seed
    document "NAME is a trader in CITY. NAME keeps A crates of B jars." and, for a share
             `stated_fraction` of the seen entities, "So NAME holds N jars." (N = A x B): the derived
             fact as natural text sometimes states it, the same documents in every arm
    thinking "This trader keeps A crates of B jars. A x B = N. So they hold N jars."  (no name)

Strata of the test: `seen` entities are the training pool's (their documents get thinking in the TPT
arms); `heldout` entities are test-only: their documents are never trained on, in any arm, so a right
answer there is the rule learned (read the document, multiply), not an answer remembered.

Tasks (experiment.task_file): `knowledge-think`, the primary endpoint: the prompt is the document and then
`<think>`, exactly where training placed it, scored by the last number before `</think>`;
`knowledge-direct`: the document then "So NAME holds", scored by the first number (what raw text can
teach: the stated derived facts).

The words the world writes (its names and cities) are appended to the testbed tokenizer's vocabulary
after the arithmetic world's, so the arithmetic world's token ids do not change.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from tpt.core.errors import ConfigError, InputError
from tpt.core.jsontypes import JSONObject

WORLD = "knowledge"
ONSETS = ("B", "D", "F", "G", "K", "L", "M", "N", "P", "R", "S", "T", "V", "Z", "H", "J")
NUCLEI = ("a", "e", "i", "o", "u")
CODAS = ("lan", "ren", "mor", "tis", "vek", "dun", "sar", "pel", "kin", "zot")
NAMES = tuple(o + n + c for o in ONSETS for n in NUCLEI for c in CODAS)
"""800 invented names (onset + vowel + coda: "Balan", "Kimor", ...), fixed for every world seed."""
CITIES = ("Arden", "Brill", "Corvo", "Dunmere", "Eskar", "Falk", "Greve", "Holm")
OPERANDS = range(2, 10)
"""The widest range of crates and jars per crate a world may draw from: 2..9 (products up to 81)."""

DOC = "{name} is a trader in {city}. {name} keeps {a} crates of {b} jars."
STATED = " So {name} holds {n} jars."
THINK = "This trader keeps {a} crates of {b} jars. {a} x {b} = {n}. So they hold {n} jars."
DIRECT_CUE = " So {name} holds"


@dataclass(frozen=True, kw_only=True, slots=True)
class Entity:
    """One trader; `as_dict`/`from_dict` are its form in corpus records (`entity` field)."""

    name: str
    city: str
    crates: int
    jars: int

    @property
    def holds(self) -> int:
        return self.crates * self.jars

    def as_dict(self) -> JSONObject:
        return {"name": self.name, "city": self.city, "crates": self.crates, "jars": self.jars}

    @classmethod
    def from_dict(cls, d: Any) -> Entity:
        try:
            e = cls(name=str(d["name"]), city=str(d["city"]), crates=int(d["crates"]), jars=int(d["jars"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"malformed knowledge entity {d!r}: {exc!r}") from None
        if e.crates not in OPERANDS or e.jars not in OPERANDS:
            raise InputError(f"knowledge entity {d!r}: crates and jars must be in 2..9")
        return e


@dataclass(frozen=True, kw_only=True, slots=True)
class KnowledgeConfig:
    seen: int = 300
    """Entities of the training pool (their documents get thinking in the TPT arms)."""
    heldout: int = 100
    """Test-only entities: their documents are never trained on, in any arm."""
    stated_fraction: float = 0.25
    """Share of the seen entities whose document also states the derived fact (in every arm)."""
    max_operand: int = 6
    """Crates and jars per crate are drawn from 2..max_operand (at most 9)."""
    world_seed: int = 1234
    test_seed: int = 0

    def __post_init__(self) -> None:
        if self.seen < 2 or self.heldout < 1:
            raise ConfigError("knowledge world: needs >= 2 seen and >= 1 held-out entity")
        if self.seen + self.heldout > len(NAMES):
            raise ConfigError(f"knowledge world: at most {len(NAMES)} entities (seen + heldout)")
        if not 3 <= self.max_operand <= OPERANDS[-1]:
            raise ConfigError(f"max_operand must be in 3..{OPERANDS[-1]}, got {self.max_operand}")
        if not 0 <= self.stated_fraction < 1:
            raise ConfigError(f"stated_fraction must be in [0, 1), got {self.stated_fraction}")


@dataclass(frozen=True, kw_only=True, slots=True)
class KnowledgeWorld:
    seen: tuple[Entity, ...]
    heldout: tuple[Entity, ...]
    stated: frozenset[str]
    """Names of the seen entities whose document states the derived fact."""


def make_world(config: KnowledgeConfig) -> KnowledgeWorld:
    rng = random.Random(f"knowledge-world:{config.world_seed}")
    names = rng.sample(NAMES, config.seen + config.heldout)
    ops = range(OPERANDS[0], config.max_operand + 1)
    ents = [Entity(name=n, city=rng.choice(CITIES), crates=rng.choice(ops), jars=rng.choice(ops))
            for n in names]  # fmt: skip
    seen = tuple(ents[: config.seen])
    stated = frozenset(e.name for e in rng.sample(seen, round(config.stated_fraction * config.seen)))
    return KnowledgeWorld(seen=seen, heldout=tuple(ents[config.seen :]), stated=stated)


def document(e: Entity, *, stated: bool = False) -> str:
    text = DOC.format(name=e.name, city=e.city, a=e.crates, b=e.jars)
    return text + (STATED.format(name=e.name, n=e.holds) if stated else "")


def think(e: Entity) -> str:
    """The oracle's thinking (no tags): about the document's trader, never naming it."""
    return THINK.format(a=e.crates, b=e.jars, n=e.holds)


def records(world: KnowledgeWorld) -> list[JSONObject]:
    """The training pool as corpus records for `tpt augment` (one document per seen entity)."""
    return [
        {"id": f"kw-{i:05d}", "text": document(e, stated=e.name in world.stated), "world": WORLD,
         "domain": "knowledge", "stated": e.name in world.stated, "entity": e.as_dict()}
        for i, e in enumerate(world.seen)
    ]  # fmt: skip


def test_items(world: KnowledgeWorld, *, per_stratum: int, seed: int) -> list[JSONObject]:
    """Test questions, `per_stratum` from each stratum (seen, heldout), drawn by the test seed; each row
    carries the document (the question of knowledge-think) and the direct cue's prompt text."""
    rng = random.Random(f"knowledge-test:{seed}")
    rows = []
    for stratum, ents in (("seen", world.seen), ("heldout", world.heldout)):
        for e in rng.sample(ents, min(per_stratum, len(ents))):
            doc = document(e)  # the document without the stated fact: the answer is never in the prompt
            rows.append({"id": f"kt-{stratum}-{e.name}", "question": doc,
                         "direct": doc + DIRECT_CUE.format(name=e.name), "answer": str(e.holds),
                         "level": stratum, "stratum": stratum, "entity": e.as_dict()})  # fmt: skip
    return rows


def vocabulary() -> list[str]:
    """The words the knowledge world writes beyond the arithmetic world's (appended to the tokenizer)."""
    words = set(NAMES) | set(CITIES)
    for text in (DOC, STATED, THINK):
        for w in text.replace(".", " ").split():
            if not w.startswith("{"):
                words.add(w)
    return sorted(words)


THINK_TASK = "knowledge-think"
DIRECT_TASK = "knowledge-direct"


def prepare(
    root: Any, config: KnowledgeConfig, *, test_per_stratum: int, max_new_tokens: int, eos: str
) -> Any:
    """Write worlds/knowledge/{corpus,test}.jsonl and tasks.json; return the world's plan.

    The primary statistic is the accuracy difference at the budget: raw and the controls stay near 0 on
    the think endpoint by construction (nothing in raw text teaches to derive a count after `<think>`,
    and a control's thinking states another trader's numbers), and a factor against a baseline curve that
    never rises is its budget ratio, not a measurement (docs/knowledge-world.md). The factor is reported
    beside it. `eos`: the tokenizer's end-of-sequence token, which opens every prompt as it opens every
    packed document.
    """
    from tpt.core.artifacts import write_atomic
    from tpt.reproduce.worlds import WorldPlan, write_tasks

    world = make_world(config)
    recs = records(world)
    write_atomic(root / "corpus.jsonl", "".join(json.dumps(x) + "\n" for x in recs), fsync=False)
    rows = test_items(world, per_stratum=test_per_stratum, seed=config.test_seed)
    write_atomic(root / "test.jsonl", "".join(json.dumps(x) + "\n" for x in rows), fsync=False)
    tasks = write_tasks(root, [
        {"name": THINK_TASK, "question_field": "question", "answer_field": "answer", "id_field": "id",
         "prompt": eos + "{question}<think>", "stop": ["</think>", eos], "max_new_tokens": max_new_tokens,
         "extract": "last_number",
         "description": "the document, then <think> where training placed it; the last number of the thinking"},
        {"name": DIRECT_TASK, "question_field": "direct", "answer_field": "answer", "id_field": "id",
         "prompt": eos + "{question}", "stop": [".", "<think>", eos], "max_new_tokens": 6,
         "extract": "first_number", "description": "the document, then 'So NAME holds': the first number"},
    ])  # fmt: skip
    facts = {"seen_entities": len(world.seen), "heldout_entities": len(world.heldout),
             "stated_documents": len(world.stated), "test_items": len(rows),
             "test_items_by_stratum": {s: sum(r["stratum"] == s for r in rows) for s in ("seen", "heldout")},
             "operands": [OPERANDS[0], config.max_operand], "tasks": tasks}  # fmt: skip
    return WorldPlan(name=WORLD, root=root, tasks=(THINK_TASK, DIRECT_TASK), statistic="difference", facts=facts,
                     think_endpoint="the document, then `<think>`: exactly where training places it")  # fmt: skip
