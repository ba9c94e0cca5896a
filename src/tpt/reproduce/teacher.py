"""The procedural expert teacher of the reasoning testbed: writes each document's step-by-step analysis.

A backend of `tpt augment` (`--backend procedural`: tpt.augment.backend.BACKENDS names this module's
`build`); it lives here, beside the problems it reads, because only the testbed has them.

Records of the knowledge world (`world: "knowledge"`, reproduce/knowledge.py) get that world's oracle
thinking, written from the record's `entity` and referring to it only through the document.

It reads the structured problem that the testbed generator stores in each input record (`problem` field,
reached through `GenerationRequest.meta["record"]`) and writes, in the spirit of the paper's prompt, an
expert's derivation with every intermediate result explicit (`8 x 6 = 48. 48 + 7 = 55. So Dan has 55
pens.`); a problem with more steps gets a longer trajectory, a statement of fact gets a paraphrase.

Weak teacher with a misconception (`--engine-arg misconception=1`): it believes that 7 times a number is 8
times it (`6 x 7 = 48`), in every document, whether or not the document states its answer: a consistent
error, as a real teacher's misconception is, which a student cannot average away.

Filler control (`--engine-arg filler=1`): every piece of the expert's trajectory (a word, a digit, a
symbol) becomes the word "so": the same number of student tokens in the same place, and no content.

Careless teacher (`--engine-arg error_rate=0.4`): when the document does not state the answer (an
exercise), the teacher solves it from scratch and, with that probability, slips on one intermediate result
and carries the slip to a wrong final answer. When the document states its answer, the teacher checks its
derivation against it and redoes a slipped one, so its explanations stay correct: explaining is easier
than generating. Slips are drawn from the request seed, so a re-run reproduces them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from typing import Any

from tpt.augment.backends.base import GenerationRequest, GenerationResult, SamplingParams
from tpt.core.errors import ConfigError, InputError
from tpt.reproduce import knowledge
from tpt.reproduce.problems import FACT, Problem, fact_paraphrase, solve, statement

STATED_ANSWER = re.compile(r"Answer:\s*(-?\d+)")
PIECE = re.compile(r"\d|[A-Za-z]+|[^\sA-Za-z\d]")
"""A student token of the testbed tokenizer: a digit, a word or one symbol."""


def parse_engine_args(raw: Any) -> dict[str, str]:
    """`engine_args` as a dict, or as a list of 'key=value' strings (the CLI's repeated --engine-arg)."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for item in raw:
        key, sep, value = str(item).partition("=")
        if not sep:
            raise ConfigError(f"--engine-arg {item!r}: expected key=value (e.g. error_rate=0.4)")
        out[key.strip()] = value.strip()
    return out


def think(
    problem: Problem,
    *,
    stated_answer: int | None,
    error_rate: float,
    rng: random.Random,
    misconception: bool = False,
) -> str:
    """The trajectory for one document (no tags)."""
    if problem.type == FACT:
        return fact_paraphrase(problem)
    steps = solve(problem, misconception=misconception)
    if rng.random() < error_rate:
        wrong_step = rng.randrange(len(steps))
        slipped = solve(problem, wrong_step=wrong_step, wrong_delta=rng.choice((-2, -1, 1, 2)))
        # Checking against a stated answer catches the slip; from scratch nothing does.
        if stated_answer is None or slipped[-1].value == stated_answer:
            steps = slipped
    lines = [step.render() for step in steps]
    return " ".join([*lines, statement(problem, steps[-1].value)])


class ProceduralBackend:
    """Deterministic, instant and CPU-only; counts whitespace-separated words as its 'tokens'."""

    name = "procedural"

    def __init__(self, *, error_rate: float, misconception: bool = False, filler: bool = False) -> None:
        self.error_rate = error_rate
        self.misconception = misconception
        self.filler = filler
        self.model_id = (
            f"procedural-expert(error_rate={error_rate:g}"
            + (", misconception=7x" if misconception else "")
            + (", filler" if filler else "")
            + ")"
        )

    def truncate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
        out = []
        for text in texts:
            words = text.split()
            kept = words[:max_tokens]
            out.append(
                (
                    " ".join(kept) if len(kept) < len(words) else text,
                    len(kept),
                    len(kept) < len(words),
                )
            )
        return out

    def generate(
        self, requests: Iterable[GenerationRequest], sampling: SamplingParams
    ) -> Iterator[GenerationResult]:
        for req in requests:
            yield self._one(req, sampling)

    def _one(self, req: GenerationRequest, sampling: SamplingParams) -> GenerationResult:
        record = req.meta.get("record") or {}
        text = str(req.meta.get("text", record.get("text", "")))
        if record.get("world") == knowledge.WORLD:
            try:
                thinking = knowledge.think(knowledge.Entity.from_dict(record.get("entity")))
            except InputError as exc:
                return GenerationResult(key=req.key, error=f"bad_entity: {exc}")
            return self._result(req, sampling, thinking)
        if "problem" not in record:
            return GenerationResult(
                key=req.key,
                error="no_problem: the procedural teacher needs records with a `problem` field "
                "(made by the reproduce testbed generator)",
            )
        try:
            problem = Problem.from_dict(record["problem"])
        except InputError as exc:
            return GenerationResult(key=req.key, error=f"bad_problem: {exc}")
        stated = STATED_ANSWER.search(text)
        rng = random.Random(req.seed if req.seed is not None else req.key)
        thinking = think(
            problem,
            stated_answer=int(stated.group(1)) if stated else None,
            error_rate=self.error_rate,
            rng=rng,
            misconception=self.misconception,
        )
        return self._result(req, sampling, thinking)

    def _result(self, req: GenerationRequest, sampling: SamplingParams, thinking: str) -> GenerationResult:
        if self.filler:
            thinking = " ".join("so" for _ in PIECE.findall(thinking))
        words = thinking.split()
        finish, cap = "stop", req.token_cap(sampling)
        if len(words) > cap:
            thinking, finish = " ".join(words[:cap]), "length"
        return GenerationResult(
            key=req.key,
            text=f"<think>\n{thinking}\n</think>",
            finish_reason=finish,
            prompt_tokens=sum(len(m.get("content", "").split()) for m in req.messages),
            completion_tokens=min(len(words), cap),
        )

    def close(self) -> None:
        pass


def build(options: dict[str, Any]) -> ProceduralBackend:
    """Factory for the backend registry; reads `error_rate` (0..1, default 0) from engine_args."""
    args = parse_engine_args(options.get("engine_args"))
    unknown = sorted(set(args) - {"error_rate", "misconception", "filler"})
    if unknown:
        raise ConfigError(
            f"procedural backend: unknown --engine-arg {', '.join(unknown)} (known: error_rate, misconception, filler)"
        )
    for flag in ("misconception", "filler"):
        if args.get(flag, "0") not in ("0", "1"):
            raise ConfigError(f"--engine-arg {flag}={args[flag]!r}: expected 0 or 1")
    try:
        error_rate = float(args.get("error_rate", 0.0))
    except ValueError:
        raise ConfigError(
            f"--engine-arg error_rate={args['error_rate']!r}: expected a number in [0, 1]"
        ) from None
    if not 0.0 <= error_rate <= 1.0:
        raise ConfigError(f"--engine-arg error_rate must be in [0, 1], got {error_rate}")
    return ProceduralBackend(
        error_rate=error_rate,
        misconception=args.get("misconception") == "1",
        filler=args.get("filler") == "1",
    )
