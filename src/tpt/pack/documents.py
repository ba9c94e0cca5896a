"""Which text of a document `tpt pack` packs: the original document, or the one the teacher saw.

`tpt augment` cuts each document to `--max-doc-tokens` teacher tokens and records that prefix as the
record's `text`; its manifest names the corpus it read (resolved files, text and id fields, limit).
So for an augment output directory there are two texts of each document:

- `full`: the original document, read from the corpus the run recorded. The raw (vanilla) arm uses it
  by default: the paper's vanilla model trains on "the original dataset", every document of the run at
  full length, including those whose generation failed or whose trajectory a check would reject.
- `truncated`: the record's `text`, what the teacher saw. The TPT arm uses it by default (the thinking
  explains that text); `--document-text full` gives the TPT arm the original document instead, joined
  to its record by the position the record keeps (`input.index`).

Every other input (record files, `tpt validate` directories, a corpus) is read as it is: its `text` is
what is packed. Before reading a run's corpus, pack checks it against the run's first records (each
record's text must be the start of its corpus document), so a corpus changed since the run fails clearly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby, islice
from pathlib import Path
from typing import Any

from tpt.core.errors import ConfigError, InputError
from tpt.formats.corpus import Item, content_id, iter_items
from tpt.formats.reading import BadLine, RecordLine, read_records, resolve_record_files
from tpt.formats.text import readable_id
from tpt.storage import as_path

DOCUMENT_TEXTS = ("full", "truncated")
CHECK_RECORDS = 1000  # records of the run compared with the corpus before it is read


@dataclass(frozen=True, kw_only=True, slots=True)
class AugmentRun:
    """What an augment output directory's manifest says about the corpus it read."""

    path: Path
    corpus: tuple[Path, ...]
    text_field: str
    id_field: str
    limit: int | None
    """The run's --limit: its documents are the corpus items before it (None: all)."""


def augment_run(path: str | Path) -> AugmentRun | None:
    """The run behind a `tpt augment` output directory (local or a URL), None for any other input."""
    path = as_path(path)
    manifest = path / "manifest.json"
    if not path.is_dir() or not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("stage") != "augment":
        return None
    fingerprinted = data.get("fingerprinted") or {}
    config = data.get("config") or {}
    inputs = fingerprinted.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InputError(f"{manifest} names no corpus (no 'inputs'); re-run tpt augment")
    limit = config.get("limit")
    return AugmentRun(
        path=path,
        corpus=tuple(as_path(p) for p in inputs),
        text_field=str(fingerprinted.get("text_field") or "text"),
        id_field=str(fingerprinted.get("id_field") or "id"),
        limit=int(limit) if isinstance(limit, int) else None,
    )


def default_document_text(mode: str) -> str:
    """The raw arm packs the original documents, the TPT arm the text its teacher saw."""
    return "full" if mode == "raw" else "truncated"


def open_inputs(
    inputs: Iterable[str], *, mode: str, document_text: str, log: Any = print
) -> tuple[Iterator[RecordLine | BadLine], list[dict[str, Any]]]:
    """The stream of items to pack, and for stats.json where each input's texts come from."""
    if document_text not in DOCUMENT_TEXTS:
        raise ConfigError(
            f"--document-text must be one of {', '.join(DOCUMENT_TEXTS)}, got {document_text!r}"
        )
    streams: list[Iterator[RecordLine | BadLine]] = []
    facts: list[dict[str, Any]] = []
    for arg in inputs:
        run = augment_run(arg)
        if run is None:
            files = resolve_record_files([arg])
            if document_text == "full" and mode != "raw":
                raise ConfigError(
                    f"--document-text full joins records to their original documents through the "
                    f"corpus a `tpt augment` run recorded; {arg} is not a tpt augment output directory"
                )
            if document_text == "full" and _is_validate_dir(arg):
                log(
                    f"tpt pack: warning: {arg} is `tpt validate` output: its documents are the records' "
                    "text (cut to the teacher's budget, and only those the checks kept); pack the "
                    "augment directory for the run's original documents"
                )
            streams.append(read_records(files))
            facts.append({"input": str(arg), "text": "records", "files": [str(f) for f in files]})
            continue
        records = resolve_record_files([run.path])
        if document_text == "truncated":
            streams.append(read_records(records))
            facts.append({"input": str(arg), "text": "records", "files": [str(f) for f in records]})
            continue
        check_corpus(run, records)
        if not _complete(run):
            log(
                f"tpt pack: warning: the augment run {run.path} is not complete (summary.json); its "
                "corpus documents are read all the same"
            )
        if mode == "raw":
            streams.append(original_documents(run))
        else:
            streams.append(with_full_text(read_records(records), run))
        facts.append(
            {"input": str(arg), "text": "corpus", "files": [str(f) for f in run.corpus],
             "limit": run.limit}
        )  # fmt: skip
    return _chain(streams), facts


def _chain(streams: list[Iterator[Any]]) -> Iterator[Any]:
    for stream in streams:
        yield from stream


def _complete(run: AugmentRun) -> bool:
    try:
        return bool(json.loads((run.path / "summary.json").read_text(encoding="utf-8"))["complete"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _is_validate_dir(arg: str) -> bool:
    manifest = as_path(arg) / "manifest.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("stage") == "validate"
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def _corpus_document(run: AugmentRun, item: Item) -> RecordLine | BadLine:
    """One corpus item as the raw arm sees it (the augment stage's own reading of the item)."""
    where = {"file": item.file, "line": item.line, "raw": b""}
    try:
        rec = item.parse()
    except ValueError as exc:  # corpus.ItemError: malformed_line, invalid_utf8 or unencodable_text
        source = Path(item.file).name
        reason = getattr(exc, "reason", "malformed_line").replace("malformed_line", "malformed_json")
        doc_id = readable_id(item.raw, run.id_field)  # the id still names the line when it can be read
        return BadLine(**where, id=doc_id, source=source, reason=reason, detail=str(exc))
    doc_id = rec.get(run.id_field)
    source = rec.get("source")
    source = source if isinstance(source, str) and source else Path(item.file).name
    text = rec.get(run.text_field)
    if not isinstance(text, str) or not text.strip():
        if run.text_field not in rec:
            what = "absent"
        else:
            what = "empty" if isinstance(text, str) else type(text).__name__
        detail = f"field {run.text_field!r} is {what}"
        return BadLine(**where, id=doc_id, source=source, reason="missing_text", detail=detail)
    return RecordLine(
        id=doc_id if doc_id is not None else content_id(text),
        text=text,
        thinking=None,
        finish_reason=None,
        source=source,
        file=item.file,
        line=item.line,
        raw=b"",
    )


def _corpus_items(run: AugmentRun) -> Iterator[Item]:
    missing = [str(f) for f in run.corpus if not f.is_file()]
    if missing:
        raise InputError(
            f"the corpus of the augment run {run.path} is gone ({', '.join(missing[:3])}); the raw arm "
            "reads the original documents from it. Restore it, or pack the records' text with "
            "--document-text truncated"
        )
    for item in iter_items(list(run.corpus)):
        if run.limit is not None and item.index >= run.limit:
            return
        yield item


def original_documents(run: AugmentRun) -> Iterator[RecordLine | BadLine]:
    """Every document of the run, full length, in corpus order (no thinking)."""
    for item in _corpus_items(run):
        yield _corpus_document(run, item)


def _record_index(record: RecordLine) -> int:
    try:
        index = json.loads(record.raw)["input"]["index"]
    except (ValueError, KeyError, TypeError):
        index = None
    if not isinstance(index, int):
        raise InputError(
            f"{record.file}:{record.line}: the record has no input.index, so its original document "
            "cannot be found; use --document-text truncated"
        )
    return index


def _same_start(full: str, seen: str) -> bool:
    """Whether the teacher's text is the start of the document (whitespace runs compared as one)."""
    return " ".join(full.split()).startswith(" ".join(seen.split()))


class _Corpus:
    """Forward reads of a run's corpus by item index (restarting only if asked to go back)."""

    def __init__(self, run: AugmentRun) -> None:
        self.run = run
        self._items: Iterator[Item] = _corpus_items(run)
        self._next = 0

    def texts(self, indices: list[int]) -> dict[int, RecordLine | BadLine]:
        wanted = sorted(set(indices))
        if wanted and wanted[0] < self._next:
            self._items, self._next = _corpus_items(self.run), 0
        found: dict[int, RecordLine | BadLine] = {}
        todo = iter(wanted)
        target = next(todo, None)
        while target is not None:
            item = next(self._items, None)
            if item is None:
                break
            self._next = item.index + 1
            if item.index == target:
                found[target] = _corpus_document(self.run, item)
                target = next(todo, None)
        return found


def _mismatch(run: AugmentRun, record: RecordLine, index: int, why: str) -> InputError:
    return InputError(
        f"the corpus of the augment run {run.path} changed since the run: item {index} {why} "
        f"({record.file}:{record.line}). Restore the corpus, or pack the records' text with "
        "--document-text truncated"
    )


def check_corpus(run: AugmentRun, record_files: list[Path]) -> None:
    """The run's first records must start their corpus documents: else the corpus changed."""
    sample = [r for r in islice(read_records(record_files), CHECK_RECORDS) if isinstance(r, RecordLine)]
    by_index = {_record_index(r): r for r in sample}
    found = _Corpus(run).texts(list(by_index))
    for index, record in by_index.items():
        doc = found.get(index)
        if not isinstance(doc, RecordLine):
            raise _mismatch(run, record, index, "is missing or has no text")
        if not _same_start(doc.text, record.text):
            raise _mismatch(run, record, index, "does not start with the text the teacher saw")


def with_full_text(
    records: Iterator[RecordLine | BadLine], run: AugmentRun
) -> Iterator[RecordLine | BadLine]:
    """The records, in their order, each with its original document as `text`."""
    from dataclasses import replace

    corpus = _Corpus(run)
    # One records file at a time: augment shards cover consecutive index ranges, so the corpus is read
    # forward once (within a shard, records are in completion order).
    for _, group in groupby(records, key=lambda r: r.file):
        chunk = list(group)
        wanted = {id(r): _record_index(r) for r in chunk if isinstance(r, RecordLine)}
        found = corpus.texts(list(wanted.values()))
        for item in chunk:
            if not isinstance(item, RecordLine):
                yield item
                continue
            index = wanted[id(item)]
            doc = found.get(index)
            if not isinstance(doc, RecordLine) or not _same_start(doc.text, item.text):
                raise _mismatch(run, item, index, "does not start with the text the teacher saw")
            yield replace(item, text=doc.text)
