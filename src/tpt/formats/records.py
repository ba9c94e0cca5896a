"""The augmented record and the failure record: what `tpt augment` writes, one JSON object a line.

Each is a frozen dataclass whose fields are its JSON keys, in the order written. `to_json()` gives the
dict to write; `from_json(obj, where)` reads one back and raises an `InputError` naming `where`
(file:line) for a missing key or a value of the wrong type. A key this version does not know is
ignored, so that records written by a newer tpt still read.

Adding a field is one line: `name: T | None = optional()` is written only when set (like
`control_tokens`); `name: T = default` is always written. `columns(cls)` lists the fields with their
types, for a column schema (Parquet) derived from the same definition. The readers of whole files and
directories (`read_augmented`, `read_failures`, `augment_shards`) are in `reading`.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, TypeVar, Union

from tpt.core.errors import InputError
from tpt.core.jsontypes import JSONObject, JSONValue

T = TypeVar("T", bound="JsonRecord")

_OMIT_NONE = "omit_none"


def optional() -> Any:
    """A field that defaults to None and is left out of the JSON when None."""
    return field(default=None, metadata={_OMIT_NONE: True})


class JsonRecord:
    """Mixin of the record classes: JSON writing and checked reading, driven by the dataclass fields."""

    __slots__ = ()
    kind: ClassVar[str] = "record"
    """How errors name this kind of object."""

    def to_json(self) -> JSONObject:
        """The JSON object, keys in field order; optional() fields only when set."""
        out: JSONObject = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.metadata.get(_OMIT_NONE):
                continue
            out[f.name] = value.to_json() if isinstance(value, JsonRecord) else value
        return out

    def to_line(self) -> str:
        """One JSONL line (no newline), as tpt writes it: UTF-8 text, not ASCII escapes."""
        return json.dumps(self.to_json(), ensure_ascii=False)

    @classmethod
    def from_json(cls: type[T], obj: Any, where: str = "") -> T:
        """Read one object; a missing key or a wrongly typed value is an InputError naming `where`."""
        prefix = f"{where}: " if where else ""
        if not isinstance(obj, dict):
            raise InputError(f"{prefix}{cls.kind} is a JSON {type(obj).__name__}, not an object")
        values: JSONObject = {}
        missing = []
        for column in columns(cls):
            if column.name not in obj:
                if column.required:
                    missing.append(column.name)
                continue
            value = obj[column.name]
            nested = _record_class(column.type)
            if nested is not None and (value is not None or nested is column.type):
                value = nested.from_json(value, f"{where} field '{column.name}'".lstrip())
            elif not _matches(value, column.type):
                raise InputError(
                    f"{prefix}{cls.kind} field '{column.name}' is {_json_type(value)}, "
                    f"expected {_type_name(column.type)}"
                )
            values[column.name] = value
        if missing:
            raise InputError(
                f"{prefix}{cls.kind} lacks the key(s) {', '.join(repr(m) for m in missing)} "
                f"(has: {', '.join(sorted(map(str, obj)))}); is this a `tpt augment` output file?"
            )
        return cls(**values)

    @classmethod
    def from_line(cls: type[T], line: bytes | str, where: str = "") -> T:
        """Read one JSONL line."""
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{where + ': ' if where else ''}not a JSON line ({exc})") from None
        return cls.from_json(obj, where)


@dataclass(frozen=True, slots=True)
class Column:
    """One field of a record class: its JSON key, its type and whether every record has it."""

    name: str
    type: Any
    """The resolved annotation (`int`, `str | None`, a dict of JSON values, a nested record class, ...)."""
    required: bool
    """No default: a record without the key is an error."""
    omitted_when_none: bool
    """An optional() field: absent from the JSON when None."""


_COLUMNS: dict[type, tuple[Column, ...]] = {}


def columns(cls: type) -> tuple[Column, ...]:
    """The fields of a record class, in JSON key order, with their resolved types."""
    if cls not in _COLUMNS:
        hints = typing.get_type_hints(cls)
        _COLUMNS[cls] = tuple(
            Column(
                name=f.name,
                type=hints[f.name],
                required=f.default is MISSING and f.default_factory is MISSING,
                omitted_when_none=bool(f.metadata.get(_OMIT_NONE)),
            )
            for f in fields(cls)
        )
    return _COLUMNS[cls]


def _record_class(tp: Any) -> type[JsonRecord] | None:
    """The record class of a field typed `SomeRecord` or `SomeRecord | None`, else None."""
    union = isinstance(tp, types.UnionType) or typing.get_origin(tp) is Union
    for t in typing.get_args(tp) if union else (tp,):
        if isinstance(t, type) and issubclass(t, JsonRecord):
            return t
    return None


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    if origin is Union or isinstance(tp, types.UnionType):
        return any(_matches(value, t) for t in typing.get_args(tp))
    if origin is not None:
        return isinstance(value, origin)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if is_dataclass(tp):
        return isinstance(value, dict)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is Union:
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    tp = origin or tp
    return {dict: "an object", list: "an array", str: "a string", int: "an integer", bool: "a boolean",
            float: "a number"}.get(tp, getattr(tp, "__name__", str(tp)))  # fmt: skip


def _json_type(value: Any) -> str:
    return "null" if value is None else _type_name(type(value))


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordInput(JsonRecord):
    """Where the document of a record came from."""

    kind: ClassVar[str] = "record input"
    file: str
    line: int
    """1-based line in the file (row index for Parquet)."""
    index: int
    """Position in the whole input, in the run's fixed order (the unit of sharding and resume)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Provenance(JsonRecord):
    """How the trajectory was made."""

    kind: ClassVar[str] = "record provenance"
    backend: str
    model: str | None
    template: str
    template_hash: str
    sampling: JSONObject
    """Every sampling parameter in force (backend.sampling_in_force)."""
    seed: int | None
    attempts: int
    loop_guard: JSONObject | None = optional()
    """The loop guard's settings (augment/loopguard.py: enabled, ngram, window, threshold)."""
    thinking_budget: JSONObject | None = optional()
    """Under --thinking-budget (augment/budget.py): {allocation, score, cap}: this document's score and
    the cap on its generated tokens."""
    sampling_refused: list[str] | None = optional()
    """Fields tpt meant to send that the server refused and the request went without (its own
    defaults applied to them): `sampling` leaves them out. Only the neutral extras (top_k -1, min_p 0,
    penalties off) are ever dropped so."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LoopStop(JsonRecord):
    """What the loop guard did to a trajectory it stopped (finish_reason 'repetition')."""

    kind: ClassVar[str] = "record loop"
    start_token: int
    """Offset in the generated tokens where the loop began: the thinking kept ends there."""
    tokens: int
    """Tokens generated when the guard stopped it (all paid for; completion_tokens says the same)."""
    policy: str
    """keep-prefix: the record keeps the thinking before the loop (validate's loop_stopped check
    tells it apart); drop turns the document into a failure instead and writes no record."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ControlTokens(JsonRecord):
    """What was done about the teacher's control strings found in a document (control_tokens.py)."""

    kind: ClassVar[str] = "record control_tokens"
    action: str
    """neutralized, rejected or passed (--control-tokens)."""
    found: dict[str, int]
    """Each control string found, and how many times."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AugmentedRecord(JsonRecord):
    """One (document, thinking trajectory) record, as `tpt augment` writes it to shards/part-*.jsonl."""

    kind: ClassVar[str] = "augmented record"
    id: JSONValue
    """The document's id (any JSON value), or a content hash when it had none."""
    text: str
    """The document as kept (truncated to the teacher's token budget)."""
    thinking: str
    finish_reason: str | None
    stopped_by: str | None = None
    """What ended the generation: a stop string, `eos`, `length`, `loop_guard` (finish_reason
    'repetition'), or None when unknown (and in records written before tpt recorded it)."""
    thinking_closed: bool
    thinking_method: str
    doc_tokens: int
    doc_truncated: bool
    prompt_tokens: int
    completion_tokens: int
    source: str
    meta: JSONObject
    """The input record's other fields, as read."""
    input: RecordInput
    provenance: Provenance
    control_tokens: ControlTokens | None = optional()
    """Only when the document held control strings of a server-templated teacher."""
    duplicate_of: int | None = optional()
    """Input index of the first document with the same id (--duplicate-ids keep-both)."""
    loop: LoopStop | None = optional()
    """Only when the loop guard stopped the trajectory (finish_reason 'repetition')."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure(JsonRecord):
    """An input item that produced no record, and why (shards/part-*.failures.jsonl, failures.jsonl)."""

    kind: ClassVar[str] = "failure record"
    file: str
    line: int
    index: int
    id: JSONValue
    """The document's id whenever it can be read, also from a bad line (formats.text.readable_id), else
    null."""
    reason: str
    """generation_failed, malformed_line, invalid_utf8, missing_field, empty_document, duplicate_id, ..."""
    kept: bool | None = optional()
    """True on the failures.jsonl line that reports a duplicate id kept (--duplicate-ids keep-both)."""
    detail: str
