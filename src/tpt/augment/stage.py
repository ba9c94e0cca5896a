"""`tpt augment`: stream a corpus through a teacher and write one thinking trajectory per document.

The main flow: resolve inputs -> bind the output dir to the config (manifest) -> stream items, skipping
those that already have an outcome -> validate fields -> truncate to the teacher's token budget -> render
the prompt -> backend.generate (bounded in flight, completion order) -> extract the thinking -> append the
record to its shard (exactly once; see shards.py) -> summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from tpt.artifacts import claim_output_dir, write_json
from tpt.augment.backend import (
    Backend,
    GenerationRequest,
    SamplingParams,
    build_backend,
    request_seed,
    sampling_in_force,
)
from tpt.augment.control import check_policy
from tpt.augment.extract import extract_thinking
from tpt.augment.prompts import PromptTemplate, load_template
from tpt.augment.shards import ShardBook
from tpt.corpus import Item, content_id, count_items, iter_items, resolve_inputs
from tpt.duplicate_ids import check_policy as check_duplicate_policy
from tpt.duplicate_ids import id_hash
from tpt.errors import ConfigError, InputError
from tpt.outputlock import lock_output_dir
from tpt.progress import Progress

# Failure reasons that `--retry-failed` does again: the teacher's, not the input's (a malformed line or
# an empty document fails the same way every time).
RETRYABLE = frozenset({"generation_failed"})
TRUNCATE_BATCH = 64  # documents tokenized together (batch encoding is much faster than one by one)


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    inputs: list[str]
    output: Path
    backend: str = "transformers"
    backend_options: dict[str, Any] = field(default_factory=dict)
    """Backend options (model, base_url, concurrency, batch_size, ...): see backend.py."""
    text_field: str = "text"
    id_field: str = "id"
    template: str = "paper"
    max_doc_tokens: int = 2048
    sampling: SamplingParams = field(default_factory=SamplingParams)
    shard_size: int = 1000
    """Input items per output shard: the unit of commit and of resume."""
    limit: int | None = None
    """Process only the first N input items (a later run with a larger limit continues)."""
    strict: bool = False
    """Stop at the first malformed line, missing field or empty document instead of recording it."""
    overwrite_config: bool = False
    retry_failed: bool = False
    """Do again the documents whose generation failed in earlier runs (their failure lines go)."""
    control_tokens: str = "neutralize"
    """What a server-templated backend (openai) does with a document holding the teacher's control
    strings: neutralize, reject (an input failure) or pass (control.py)."""
    duplicate_ids: str = "keep-both"
    """Documents whose id came before: keep-both (reported; the record says duplicate_of) or
    keep-first (the later ones are duplicate_id failures)."""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_doc_tokens < 1:
            raise ConfigError(f"--max-doc-tokens must be >= 1, got {self.max_doc_tokens}")
        if self.shard_size < 1:
            raise ConfigError(f"--shard-size must be >= 1, got {self.shard_size}")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"--limit must be >= 0, got {self.limit}")
        check_policy(self.control_tokens)
        check_duplicate_policy(self.duplicate_ids)


@dataclass(slots=True)
class _Doc:
    item: Item
    id: Any
    text: str
    source: str
    meta: dict[str, Any]
    record: dict[str, Any]
    duplicate_of: int | None = None
    """Input index of the first document with this id (kept with --duplicate-ids keep-both)."""


FailFn = Callable[..., None]
"""fail(item, reason, detail, doc_id=None): record that an input item produced no record."""
Generate = Callable[[Iterator["_Doc"], FailFn], Iterator[tuple["_Doc", dict[str, Any]]]]
"""An executor: turns the documents still to do into (document, record) pairs, reporting the rest to fail."""


def run(cfg: AugmentConfig, *, generate: Generate | None = None) -> dict[str, Any]:
    """Augment cfg.inputs into cfg.output; `generate` replaces the local backend (the Ray executor).

    The output directory is locked for the whole run: a second writer fails at once (outputlock.py)."""
    with lock_output_dir(cfg.output, stage="augment"):
        return _run(cfg, generate)


def _run(cfg: AugmentConfig, generate: Generate | None) -> dict[str, Any]:
    started = time.monotonic()
    files = resolve_inputs(cfg.inputs)
    template = load_template(cfg.template)
    fingerprinted = {
        "inputs": [str(f.resolve()) for f in files],
        "backend": cfg.backend,
        "model": cfg.backend_options.get("model"),
        "open_think": cfg.backend_options.get("open_think"),
        "engine_args": cfg.backend_options.get("engine_args"),
        "template": template.name,
        "template_hash": template.hash,
        "text_field": cfg.text_field,
        "id_field": cfg.id_field,
        "max_doc_tokens": cfg.max_doc_tokens,
        "sampling": cfg.sampling.as_dict(),
        "shard_size": cfg.shard_size,
        # Only a server-templated backend applies the policy; other configs keep their fingerprint.
        **({"control_tokens": cfg.control_tokens} if cfg.backend == "openai" else {}),
        **({"duplicate_ids": cfg.duplicate_ids} if cfg.duplicate_ids != "keep-both" else {}),
    }
    safe_options = {k: v for k, v in cfg.backend_options.items() if "key" not in k or k == "api_key_env"}
    claim_output_dir(
        cfg.output,
        stage="augment",
        config={**fingerprinted, "backend_options": safe_options, "limit": cfg.limit, "strict": cfg.strict},
        fingerprinted=fingerprinted,
        override=cfg.overwrite_config,
    )
    book = ShardBook(cfg.output / "shards", cfg.shard_size, id_of=_first_occurrence_id)
    retried = book.forget_failures(RETRYABLE) if cfg.retry_failed else 0
    progress = Progress(None, label="augment", enabled=cfg.progress)
    if cfg.progress:
        # The total is for the progress line only: count in the background rather than hold the start
        # of a large corpus behind a whole extra read (the summary counts the items the run reads).
        def count_total() -> None:
            n = count_items(files)
            progress.total = n if cfg.limit is None else min(n, cfg.limit)

        threading.Thread(target=count_total, name="tpt-count", daemon=True).start()
    counters = {"new_records": 0, "new_failures": 0, "input_items": 0, "retried": retried}

    def fail(item: Item, reason: str, detail: str, doc_id: Any = None) -> None:
        if cfg.strict:
            raise InputError(f"{item.file}:{item.line}: {reason}: {detail} (--strict)")
        line = {
            "file": item.file,
            "line": item.line,
            "index": item.index,
            "id": doc_id,
            "reason": reason,
            "detail": detail,
        }
        if book.write(item.index, line, failure=True):
            counters["new_failures"] += 1
            progress.update(done=1, failures=1)

    def documents() -> Iterator[_Doc]:
        """Items that still need an outcome, as validated documents; records input problems."""
        current_k, last_index = -1, -1
        for item in iter_items(files):
            if cfg.limit is not None and item.index >= cfg.limit:
                break
            last_index = item.index
            k, offset = divmod(item.index, cfg.shard_size)
            if k != current_k:
                if current_k >= 0:
                    book.set_expected(current_k, cfg.shard_size)
                current_k = k
            held = book.committed_items(k)
            if held is not None:
                if offset < held:
                    if offset == 0:
                        progress.skip(held)
                    continue
                book.reopen(k)  # an earlier run stopped inside this shard (a smaller --limit)
            shard = book.shard(k)
            if item.index in shard.done_indices:
                progress.skip(1)
                continue
            doc = _to_document(item, fail, cfg.text_field, cfg.id_field)
            if doc is not None and not _is_dropped_duplicate(doc, book, cfg.duplicate_ids, fail):
                yield doc
        counters["input_items"] = last_index + 1
        if last_index >= 0:
            k, offset = divmod(last_index, cfg.shard_size)
            book.set_expected(k, offset + 1)

    generate = generate or _generate_locally(cfg, template)
    outcomes = generate(documents(), fail)
    try:
        for doc, record in outcomes:
            if book.write(doc.item.index, record, failure=False):
                counters["new_records"] += 1
                progress.update(done=1, tokens=record["completion_tokens"])
    finally:
        getattr(outcomes, "close", lambda: None)()  # close the backend now, not when garbage-collected
        book.close()
        progress.close()
    return _write_summary(cfg, book, counters, time.monotonic() - started)


def _generate_locally(cfg: AugmentConfig, template: PromptTemplate) -> Generate:
    """The single-machine executor: one backend in this process."""

    def generate(docs: Iterator[_Doc], fail: FailFn) -> Iterator[tuple[_Doc, dict[str, Any]]]:
        backend = build_backend(cfg.backend, cfg.backend_options)
        try:
            yield from generate_records(backend, docs, cfg, template, fail)
        finally:
            backend.close()

    return generate


def generate_records(
    backend: Backend, docs: Iterator[_Doc], cfg: AugmentConfig, template: PromptTemplate, fail: FailFn
) -> Iterator[tuple[_Doc, dict[str, Any]]]:
    """Truncate, prompt, generate and extract: yields (document, record) in completion order; a document
    that yields no record is reported through `fail`. Shared by the local and the Ray executors."""
    inflight: dict[int, tuple[_Doc, str, int, bool, dict[str, Any] | None]] = {}
    # Backends whose server templates the prompt itself expose the teacher's control strings; the
    # in-process ones encode the document as text and need no policy (control.py).
    controls = getattr(backend, "control_strings", None)

    def requests() -> Iterator[GenerationRequest]:
        while batch := list(islice(docs, TRUNCATE_BATCH)):
            cut = backend.truncate([d.text for d in batch], cfg.max_doc_tokens)
            for doc, (kept, num_tokens, truncated) in zip(batch, cut, strict=True):
                if not kept.strip():
                    fail(doc.item, "empty_document", EMPTY_AFTER_TRUNCATION, doc.id)
                    continue
                sent, control = _control_policy(controls, cfg.control_tokens, kept)
                if control is not None and control["action"] == "rejected":
                    found = ", ".join(f"{s!r} x{n}" for s, n in control["found"].items())
                    fail(
                        doc.item,
                        "control_tokens",
                        f"the document holds control strings of the teacher "
                        f"({found}; from {controls.source}); --control-tokens reject",
                        doc.id,
                    )
                    continue
                seed = request_seed(cfg.sampling.seed, str(doc.id))
                prompt = template.render(sent, focus_seed=seed if seed is not None else doc.item.index)
                inflight[doc.item.index] = (doc, kept, num_tokens, truncated, control)
                yield GenerationRequest(
                    key=doc.item.index,
                    messages=({"role": "user", "content": prompt},),
                    seed=seed,
                    meta={"text": kept, "id": doc.id, "record": doc.record},
                )

    provenance_base = {
        "backend": cfg.backend,
        "model": getattr(backend, "model_id", cfg.backend_options.get("model")),
        "template": template.name,
        "template_hash": template.hash,
        "sampling": sampling_in_force(backend, cfg.sampling),
    }
    for result in backend.generate(requests(), cfg.sampling):
        doc, kept, num_tokens, truncated, control = inflight.pop(result.key)
        if result.error:
            fail(doc.item, "generation_failed", result.error, doc.id)
            continue
        thinking = extract_thinking(result)
        seed = request_seed(cfg.sampling.seed, str(doc.id))
        record = {
            "id": doc.id,
            "text": kept,
            "thinking": thinking.text,
            "finish_reason": result.finish_reason,
            "stopped_by": thinking.stopped_by,
            "thinking_closed": thinking.closed,
            "thinking_method": thinking.method,
            "doc_tokens": num_tokens,
            "doc_truncated": truncated,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "source": doc.source,
            "meta": doc.meta,
            "input": {"file": doc.item.file, "line": doc.item.line, "index": doc.item.index},
            "provenance": {**provenance_base, "seed": seed, "attempts": result.attempts},
        }
        if control is not None:
            record["control_tokens"] = control
        if doc.duplicate_of is not None:
            record["duplicate_of"] = doc.duplicate_of
        yield doc, record


def _control_policy(controls: Any, policy: str, text: str) -> tuple[str, dict[str, Any] | None]:
    """(the document as sent, what was done about its control strings: None when it has none)."""
    if controls is None:
        return text, None
    found = controls.find(text)
    if not found:
        return text, None
    action = {"neutralize": "neutralized", "reject": "rejected", "pass": "passed"}[policy]
    sent = controls.neutralize(text) if policy == "neutralize" else text
    return sent, {"action": action, "found": dict(sorted(found.items()))}


def _to_document(item: Item, fail: Callable[..., None], cfg_text: str, cfg_id: str) -> _Doc | None:
    """Parse and check one input item; a problem is recorded through `fail` and gives None."""
    try:
        rec = item.parse()
    except ValueError as exc:
        fail(item, getattr(exc, "reason", "malformed_line"), str(exc))  # also invalid_utf8, unencodable_text
        return None
    doc_id = rec.get(cfg_id)
    if cfg_text not in rec:
        fail(item, "missing_field", f"no {cfg_text!r} field (fields: {', '.join(sorted(rec)[:8])})", doc_id)
        return None
    text = rec[cfg_text]
    if not isinstance(text, str):
        fail(item, "wrong_field_type", f"{cfg_text!r} is {type(text).__name__}, expected a string", doc_id)
        return None
    if not text.strip():
        fail(item, "empty_document", f"{cfg_text!r} is empty", doc_id)
        return None
    if doc_id is None:
        doc_id = content_id(text)
    source = rec.get("source") if isinstance(rec.get("source"), str) else Path(item.file).name
    meta = {k: v for k, v in rec.items() if k not in (cfg_text, cfg_id, "source")}
    return _Doc(item=item, id=doc_id, text=text, source=source, meta=meta, record=rec)


# Failure reasons of documents that passed the input checks: their id counts as seen (duplicate_ids.py).
CHECKED_FAILURES = frozenset({"generation_failed", "control_tokens"})
EMPTY_AFTER_TRUNCATION = "no text left after truncation"


def _first_occurrence_id(line: dict[str, Any], failure: bool) -> int | None:
    """The id hash of an outcome that registered its id (a document that passed the input checks and
    was not a duplicate), else None; the same rule rebuilds the registry on resume."""
    if failure:
        checked = line.get("reason") in CHECKED_FAILURES or line.get("detail") == EMPTY_AFTER_TRUNCATION
        return id_hash(line.get("id")) if checked else None
    return id_hash(line.get("id")) if line.get("duplicate_of") is None else None


def _is_dropped_duplicate(doc: _Doc, book: ShardBook, policy: str, fail: FailFn) -> bool:
    """Register the document's id; a repeat is marked (keep-both) or failed (keep-first)."""
    with book.lock:
        first = book.ids.add(id_hash(doc.id), doc.item.index)
    if first == doc.item.index:
        return False
    if policy == "keep-first":
        fail(
            doc.item,
            "duplicate_id",
            f"the id of input item {first} again; dropped (--duplicate-ids keep-first)",
            doc.id,
        )
        return True
    doc.duplicate_of = first
    return False


def _write_summary(
    cfg: AugmentConfig, book: ShardBook, counters: dict[str, int], wall_s: float
) -> dict[str, Any]:
    total = counters["input_items"]
    stats = book.summary_stats()
    num_failures = book.collect_failures(cfg.output / "failures.jsonl")
    done = stats.records + sum(stats.failures.values())
    summary = {
        "input_items": total,
        "documents_done": done,
        "complete": done >= total and not book.open,
        "records": stats.records,
        "failures": num_failures,
        "failures_by_reason": dict(stats.failures),
        "new_records_this_run": counters["new_records"],
        "new_failures_this_run": counters["new_failures"],
        "retried_this_run": counters["retried"],
        "doc_tokens": stats.doc_tokens,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "mean_completion_tokens": stats.completion_tokens / stats.records if stats.records else 0.0,
        "mean_thinking_chars": stats.thinking_chars / stats.records if stats.records else 0.0,
        "truncated_documents": stats.truncated_docs,
        "cut_by_length_limit": stats.length_cut,
        "duplicate_ids": stats.duplicates_kept + stats.failures.get("duplicate_id", 0),
        "duplicate_ids_policy": cfg.duplicate_ids,
        "wall_time_s_this_run": round(wall_s, 3),
    }
    write_json(cfg.output / "summary.json", summary)
    return summary
