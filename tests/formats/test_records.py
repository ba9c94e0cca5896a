"""The augmented record and the failure record: what augment writes reads back as the same typed record."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path

import pytest

import tpt.augment.stage as stage
from tpt.augment.backends.base import GenerationResult, SamplingParams
from tpt.augment.executors import LocalExecutor
from tpt.core.errors import InputError
from tpt.formats.reading import (
    RecordLine,
    augment_shards,
    read_augmented,
    read_failures,
    read_records,
    resolve_record_files,
)
from tpt.formats.records import (
    AugmentedRecord,
    ControlTokens,
    Failure,
    JsonRecord,
    Provenance,
    RecordInput,
    columns,
    optional,
)


class EchoTeacher:
    """A teacher that thinks the document backwards (no model can run in a unit test)."""

    name = "echo"
    model_id = "echo-teacher"

    def truncate(self, texts, max_tokens):
        return [(" ".join(t.split()[:max_tokens]), min(len(t.split()), max_tokens), len(t.split()) > max_tokens)
                for t in texts]  # fmt: skip

    def generate(self, requests, sampling):
        for req in requests:
            doc = req.meta["text"]
            yield GenerationResult(key=req.key, text=f"<think>\n{doc[::-1]}\n</think>\nanswer",
                                   prompt_tokens=7, completion_tokens=len(doc.split()) + 2)  # fmt: skip

    def close(self):
        pass


def augment(tmp_path: Path, rows: list) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    cfg = stage.AugmentConfig(inputs=[str(corpus)], output=tmp_path / "aug", backend="echo",
                              sampling=SamplingParams(max_tokens=64, seed=1), max_doc_tokens=4,
                              progress=False)  # fmt: skip
    stage.run(cfg, executor=LocalExecutor(lambda cfg: EchoTeacher()))
    return cfg.output


def test_what_augment_writes_reads_back_equal_key_for_key(tmp_path):
    out = augment(tmp_path, [
        {"id": 1, "text": "one two three four five six", "lang": "en"},
        {"id": 1, "text": "the same id again"},  # kept both: the record says duplicate_of
        {"text": "é: no id"},
        "not json",
        {"id": 4, "text": ""},
    ])  # fmt: skip
    shards = augment_shards(out)
    assert shards and all(p.name.startswith("part-") for p in shards)
    raw = [line for p in shards for line in p.read_text(encoding="utf-8").splitlines()]
    records = list(read_augmented(shards))
    assert len(records) == len(raw) == 3
    for line, rec in zip(raw, records, strict=True):
        obj = json.loads(line)
        assert rec.to_json() == obj and list(rec.to_json()) == list(obj)  # same keys, same order
        assert rec.to_line() == line  # byte for byte as the shard book writes it
    first, again, hashed = sorted(records, key=lambda r: r.input.index)
    assert isinstance(first.input, RecordInput) and isinstance(first.provenance, Provenance)
    assert first.doc_truncated and first.doc_tokens == 4 and first.text == "one two three four"
    assert first.meta == {"lang": "en"} and first.provenance.model == "echo-teacher"
    assert first.duplicate_of is None and "duplicate_of" not in first.to_json()
    assert again.duplicate_of == 0 and "control_tokens" not in again.to_json()
    assert isinstance(hashed.id, str) and hashed.text == "é: no id"
    # The lenient reader of the later stages sees the same records.
    lines = list(read_records(resolve_record_files([out])))
    assert [type(x) for x in lines] == [RecordLine] * 3
    assert [x.text for x in lines] == [r.text for r in records]
    # Failures read back as typed failure records (keep-both reports the duplicate as kept).
    failures = list(read_failures([out / "failures.jsonl"]))
    assert {f.reason for f in failures} == {"malformed_line", "empty_document", "duplicate_id"}
    assert [f.kept for f in failures if f.reason == "duplicate_id"] == [True]
    text = (out / "failures.jsonl").read_text(encoding="utf-8").splitlines()
    assert [f.to_json() for f in failures] == [json.loads(t) for t in text]


def _record() -> AugmentedRecord:
    return AugmentedRecord(
        id="d1", text="a document", thinking="a thought", finish_reason="stop", stopped_by="</think>",
        thinking_closed=True, thinking_method="tags", doc_tokens=2, doc_truncated=False, prompt_tokens=9,
        completion_tokens=3, source="c.jsonl", meta={}, input=RecordInput(file="c.jsonl", line=1, index=0),
        provenance=Provenance(backend="x", model=None, template="paper", template_hash="h",
                              sampling={"temperature": 0.6}, seed=None, attempts=1),
        control_tokens=ControlTokens(action="neutralized", found={"<think>": 1}),
    )  # fmt: skip


def test_unknown_keys_are_ignored_and_optional_keys_written_only_when_set():
    rec = _record()
    obj = rec.to_json()
    assert list(obj)[-1] == "control_tokens" and "duplicate_of" not in obj
    assert obj["control_tokens"] == {"action": "neutralized", "found": {"<think>": 1}}
    assert AugmentedRecord.from_json({**obj, "from_a_newer_tpt": [1]}, "f:1") == rec
    # A record written before tpt recorded stopped_by still reads (it has a default).
    old = {k: v for k, v in obj.items() if k != "stopped_by"}
    assert AugmentedRecord.from_json(old, "f:1").stopped_by is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.pop("text"), "shard.jsonl:7: augmented record lacks the key(s) 'text'"),
        (
            lambda o: o.update(doc_tokens="2"),
            "shard.jsonl:7: augmented record field 'doc_tokens' is a string",
        ),
        (
            lambda o: o.update(doc_truncated=1),
            "shard.jsonl:7: augmented record field 'doc_truncated' is an integer, expected a boolean",
        ),
        (
            lambda o: o["input"].pop("index"),
            "shard.jsonl:7 field 'input': record input lacks the key(s) 'index'",
        ),
    ],
)
def test_a_bad_record_is_an_error_naming_file_and_line(change, message):
    obj = json.loads(_record().to_line())
    change(obj)
    with pytest.raises(InputError, match=re.escape(message)):
        AugmentedRecord.from_json(obj, "shard.jsonl:7")


def test_reading_a_file_names_the_bad_line(tmp_path):
    path = tmp_path / "part-00000000.jsonl"
    path.write_text(_record().to_line() + "\n\n" + "[1, 2]\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:3: augmented record is a JSON list, not an object$"):
        list(read_augmented([path]))
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:1: not a JSON line"):
        list(read_augmented([path]))
    with pytest.raises(InputError, match=r"failure record lacks the key\(s\) 'reason'"):
        Failure.from_json({"file": "f", "line": 1, "index": 0, "id": None, "detail": "d"})


def test_adding_an_optional_field_is_one_line_and_the_columns_follow():
    @dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
    class Extended(JsonRecord):
        text: str
        loops: int | None = optional()

    assert Extended(text="t").to_json() == {"text": "t"}
    assert Extended.from_json({"text": "t", "loops": 3}) == Extended(text="t", loops=3)
    cols = {c.name: c for c in columns(AugmentedRecord)}
    assert list(cols) == [f.name for f in dataclasses.fields(AugmentedRecord)]
    assert cols["text"].type is str and cols["text"].required
    assert cols["duplicate_of"].type == (int | None) and cols["duplicate_of"].omitted_when_none
    assert cols["input"].type is RecordInput and typing.get_origin(cols["meta"].type) is dict
