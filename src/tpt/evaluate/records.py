"""Read task data files into Examples: the generic field reader and one reader per bundled benchmark."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError
from tpt.core.jsontypes import JSONObject
from tpt.evaluate.spec import DataSource

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    """One question: a stable id, the fields its templates use, and the gold answer as text."""

    id: str
    fields: Mapping[str, Any]
    gold: str
    question: str
    """The question text alone: exemplars equal to it are never shown for it."""


def read_records(path: Path) -> list[tuple[int, JSONObject]]:
    """(1-based line or array index, record) pairs from a JSONL file or a JSON array file."""
    if not path.is_file():
        raise InputError(f"task data file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, list):
            raise InputError(f"{path}: a .json task file must hold an array of objects")
        rows = list(enumerate(data, start=1))
    else:
        rows = []
        # split on "\n" only: str.splitlines() also breaks at U+0085 and U+2028, which MMLU text contains
        for n, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: not valid JSON ({exc})") from None
    for n, rec in rows:
        if not isinstance(rec, dict):
            raise InputError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
    return rows


def load_examples(source: DataSource) -> list[Example]:
    """All examples of a data source, in file order."""
    path = Path(source.path)
    reader = READERS[source.reader]
    return [reader(source, path, n, rec) for n, rec in read_records(path)]


def example_from_record(source: DataSource, rec: JSONObject, where: str = "inline exemplar") -> Example:
    """An Example from a record written inline in a task file (same fields as the data)."""
    return READERS[source.reader](source, Path(where), 0, rec)


def _need(rec: JSONObject, name: str, path: Path, n: int) -> Any:
    if name not in rec:
        have = ", ".join(sorted(rec)) or "none"
        loc = f"{path}:{n}" if n else str(path)
        raise InputError(
            f"{loc}: record has no field {name!r} (fields: {have}); set the field name in the task"
        )
    return rec[name]


def read_fields(source: DataSource, path: Path, n: int, rec: JSONObject) -> Example:
    """User data: any fields; the question and answer fields are named by the DataSource."""
    question = _need(rec, source.question_field, path, n)
    answer = _need(rec, source.answer_field, path, n)
    ident = rec.get(source.id_field) if source.id_field else None
    fields = dict(rec)
    fields.setdefault("question", question)
    fields.setdefault("answer", answer)
    return Example(
        id=str(ident if ident is not None else n),
        fields=fields,
        gold=str(answer),
        question=str(question),
    )


def read_gsm8k(source: DataSource, path: Path, n: int, rec: JSONObject) -> Example:
    """GSM8K: `answer` is a worked solution ending in "#### N"; the gold answer is N."""
    answer = str(_need(rec, "answer", path, n))
    if "####" not in answer:
        raise InputError(f"{path}:{n}: GSM8K answer has no '####' final-answer line")
    gold = answer.split("####")[-1].strip().replace(",", "")
    question = str(_need(rec, "question", path, n))
    return Example(
        id=f"{path.stem}-{n}",
        fields={"question": question, "answer": answer},
        gold=gold,
        question=question,
    )


def read_svamp(source: DataSource, path: Path, n: int, rec: JSONObject) -> Example:
    """SVAMP: the problem is Body + " " + Question; the gold `Answer` is a float (written 5, not 5.0)."""
    body, q = str(_need(rec, "Body", path, n)).strip(), str(_need(rec, "Question", path, n)).strip()
    value = float(_need(rec, "Answer", path, n))
    gold = str(int(value)) if value.is_integer() else repr(value)
    question = f"{body} {q}"
    return Example(
        id=str(rec.get("ID", n)),
        fields={"question": question, "answer": gold},
        gold=gold,
        question=question,
    )


def read_math500(source: DataSource, path: Path, n: int, rec: JSONObject) -> Example:
    """MATH-500: `problem`, `solution` (with a boxed answer) and the already extracted `answer`."""
    problem = str(_need(rec, "problem", path, n))
    fields = {
        "problem": problem,
        "solution": rec.get("solution", ""),
        "answer": str(_need(rec, "answer", path, n)),
    }
    return Example(id=str(rec.get("unique_id", n)), fields=fields, gold=fields["answer"], question=problem)


def _choices_block(choices: list[str]) -> str:
    return "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


def read_mmlu(source: DataSource, path: Path, n: int, rec: JSONObject) -> Example:
    """MMLU: four choices and the answer letter; `subject` is kept for same-subject exemplars."""
    choices = list(_need(rec, "choices", path, n))
    letter = rec.get("answer_letter") or LETTERS[int(_need(rec, "answer", path, n))]
    subject = str(_need(rec, "subject", path, n))
    question = str(_need(rec, "question", path, n)).strip()
    fields = {
        "question": question,
        "choices": _choices_block(choices),
        "subject": subject,
        "subject_name": subject.replace("_", " "),
        "answer": letter,
    }
    return Example(id=f"{path.stem}-{n}", fields=fields, gold=letter, question=question)


def read_arc(source: DataSource, path: Path, n: int, rec: JSONObject) -> Example:
    """ARC: `choices` {text, label}; labels are re-lettered A.. in order so the gold is always a letter."""
    choices = _need(rec, "choices", path, n)
    labels, texts = list(choices["label"]), list(choices["text"])
    key = str(_need(rec, "answerKey", path, n))
    if key not in labels:
        raise InputError(f"{path}:{n}: answerKey {key!r} is not among the labels {labels}")
    question = str(_need(rec, "question", path, n)).strip()
    letter = LETTERS[labels.index(key)]
    fields = {"question": question, "choices": _choices_block(texts), "answer": letter}
    return Example(id=str(rec.get("id", n)), fields=fields, gold=letter, question=question)


READERS: dict[str, Callable[[DataSource, Path, int, JSONObject], Example]] = {
    "fields": read_fields,
    "gsm8k": read_gsm8k,
    "svamp": read_svamp,
    "math500": read_math500,
    "mmlu": read_mmlu,
    "arc": read_arc,
}
