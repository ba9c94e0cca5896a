"""`tpt augment`: stream a corpus through a teacher and write one thinking trajectory per document.

The main flow: resolve inputs -> bind the output dir to the config (manifest) -> stream the items the
shard book still needs (`book.pending`) -> validate fields -> the executor truncates, prompts, generates
and extracts (generation.py; locally or on Ray workers, executors/) -> append each record to its shard
(exactly once: shards.py keeps the book of which shards are done, shardcommit.py commits each) -> summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tpt.augment.budget import Plan, load_or_make_plan
from tpt.augment.config import AugmentConfig
from tpt.augment.executors import Executor, LocalExecutor
from tpt.augment.failfast import FailFast
from tpt.augment.generation import (
    CHECKED_FAILURES,
    EMPTY_AFTER_TRUNCATION,
    Document,
    FailFn,
    Job,
    to_document,
)
from tpt.augment.prompts import PromptTemplate, load_template
from tpt.augment.shardcommit import shard_files
from tpt.augment.shards import ShardBook
from tpt.core.artifacts import claim_output_dir, write_json
from tpt.core.duplicate_ids import id_hash
from tpt.core.errors import InputError
from tpt.core.progress import Progress
from tpt.formats.corpus import Item, count_items, iter_items, resolve_inputs
from tpt.formats.records import Failure
from tpt.formats.summaries import AugmentSummary
from tpt.storage.outputlock import lock_output_dir

__all__ = ["AugmentConfig", "AugmentSummary", "run"]

# Failure reasons that `--retry-failed` does again: the teacher's, not the input's (a malformed line or
# an empty document fails the same way every time).
RETRYABLE = frozenset({"generation_failed"})
# Failure reasons that mean the teacher did generate (the loop guard stopped it, --loop-policy drop).
TEACHER_OUTCOMES = frozenset({"repetition"})


def run(cfg: AugmentConfig, *, executor: Executor | None = None) -> AugmentSummary:
    """Augment cfg.inputs into cfg.output; `executor` says where generation runs (default: one backend
    in this process, executors.LocalExecutor). The output directory is locked for the whole run: a
    second writer fails at once (outputlock.py)."""
    with lock_output_dir(cfg.output, stage="augment"):
        return _run(cfg, executor or LocalExecutor())


def _run(cfg: AugmentConfig, executor: Executor) -> AugmentSummary:
    started = time.monotonic()
    files = resolve_inputs(cfg.inputs)
    template = load_template(cfg.template)
    _claim(cfg, files, template)
    plan = load_or_make_plan(cfg, files)  # each document's thinking cap under --thinking-budget
    shards = cfg.output / "shards"
    book = ShardBook(
        shards,
        cfg.shard_size,
        id_of=_first_occurrence_id,
        files=shard_files(shards),
        records_format=cfg.output_format,
    )
    counters = {"new_records": 0, "new_failures": 0}
    counters["retried"] = book.forget_failures(RETRYABLE) if cfg.retry_failed else 0
    progress = _progress(cfg, files)

    def write_failure(item: Item, reason: str, detail: str, doc_id: Any = None) -> None:
        failure = Failure(
            file=item.file, line=item.line, index=item.index, id=doc_id, reason=reason, detail=detail
        )
        if book.write(item.index, failure.to_json(), failure=True):
            counters["new_failures"] += 1
            progress.update(done=1, failures=1)

    fast = FailFast(cfg.fail_fast, write_failure)

    def fail(item: Item, reason: str, detail: str, doc_id: Any = None) -> None:
        if cfg.strict:
            raise InputError(f"{item.file}:{item.line}: {reason}: {detail} (--strict)")
        if reason == "generation_failed":  # the teacher's failure: held while none has succeeded
            fast.failed(item, reason, detail, doc_id, detail=detail)
            return
        if reason in TEACHER_OUTCOMES:
            fast.succeeded()
        write_failure(item, reason, detail, doc_id)

    def documents() -> Iterator[Document]:
        """The items still without an outcome, as checked documents; input problems go to `fail`."""
        for item in book.pending(iter_items(files), limit=cfg.limit, skipped=progress.skip):
            if plan is not None and item.index >= plan.documents:
                raise InputError(plan.beyond(item))
            doc = to_document(item, fail, cfg.text_field, cfg.id_field)
            if doc is not None and not _is_dropped_duplicate(doc, book, cfg.duplicate_ids, fail):
                yield doc

    outcomes = executor.generate(Job(cfg, template, plan), documents(), fail)
    sent = SamplingSent()
    try:
        for doc, record in outcomes:
            fast.succeeded()
            if book.write(doc.item.index, record, failure=False):
                counters["new_records"] += 1
                progress.update(done=1, tokens=record["completion_tokens"])
                sent.note(record["provenance"])
        fast.flush()  # fewer failures than the limit, and no success: recorded (the exit status says)
        extra, wall_s = executor.report(), time.monotonic() - started
    finally:
        getattr(outcomes, "close", lambda: None)()  # close the backend now, not when garbage-collected
        executor.close()
        book.close()
        progress.close()
    notices = getattr(executor, "notices", dict)()
    counts = {**counters, "input_items": book.items_read}
    return _write_summary(cfg, book, counts, wall_s, extra, sent, notices, plan)


def _claim(cfg: AugmentConfig, files: list[Path], template: PromptTemplate) -> None:
    """Bind the output directory to this config (a different one refuses unless --overwrite-config)."""
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
        **({"output_format": cfg.output_format} if cfg.output_format != "jsonl" else {}),
        # Only a server-templated backend applies the policy; other configs keep their fingerprint.
        **({"control_tokens": cfg.control_tokens} if cfg.backend == "openai" else {}),
        **({"duplicate_ids": cfg.duplicate_ids} if cfg.duplicate_ids != "keep-both" else {}),
        **({"thinking_budget": cfg.thinking_budget.as_dict()} if cfg.thinking_budget else {}),
    }
    safe_options = {k: v for k, v in cfg.backend_options.items() if "key" not in k or k == "api_key_env"}
    claim_output_dir(
        cfg.output,
        stage="augment",
        config={**fingerprinted, "backend_options": safe_options, "limit": cfg.limit, "strict": cfg.strict},
        fingerprinted=fingerprinted,
        override=cfg.overwrite_config,
    )


def _progress(cfg: AugmentConfig, files: list[Path]) -> Progress:
    progress = Progress(None, label="augment", enabled=cfg.progress)
    if cfg.progress:
        # The total is for the progress line only: count in the background rather than hold the start
        # of a large corpus behind a whole extra read (the summary counts the items the run reads).
        def count_total() -> None:
            n = count_items(files, read_remote=False)  # None for a corpus on object storage
            if n is not None:
                progress.total = n if cfg.limit is None else min(n, cfg.limit)

        threading.Thread(target=count_total, name="tpt-count", daemon=True).start()
    return progress


def _first_occurrence_id(line: dict[str, Any], failure: bool) -> int | None:
    """The id hash of an outcome that registered its id (a document that passed the input checks and
    was not a duplicate), else None; the same rule rebuilds the registry on resume."""
    if failure:
        checked = line.get("reason") in CHECKED_FAILURES or line.get("detail") == EMPTY_AFTER_TRUNCATION
        return id_hash(line.get("id")) if checked else None
    return id_hash(line.get("id")) if line.get("duplicate_of") is None else None


def _is_dropped_duplicate(doc: Document, book: ShardBook, policy: str, fail: FailFn) -> bool:
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


class SamplingSent:
    """The sampling fields this run's records went out with, each distinct set once (one set, unless a
    server refused some fields: then the records say which, in provenance.sampling_refused)."""

    def __init__(self) -> None:
        self.sets: list[dict[str, Any]] = []
        self.refused: set[str] = set()

    def note(self, provenance: dict[str, Any]) -> None:
        sampling = provenance.get("sampling")
        if sampling is not None and sampling not in self.sets:  # a short list: one or two sets
            self.sets.append(sampling)
        self.refused.update(provenance.get("sampling_refused") or ())


def _write_summary(
    cfg: AugmentConfig,
    book: ShardBook,
    counters: dict[str, int],
    wall_s: float,
    extra: dict[str, Any],
    sent: SamplingSent,
    notices: dict[str, str],
    plan: Plan | None = None,
) -> AugmentSummary:
    total = counters["input_items"]
    stats = book.summary_stats()
    num_failures = book.collect_failures(cfg.output / "failures.jsonl")
    done = stats.records + sum(stats.failures.values())
    summary = AugmentSummary(
        output=cfg.output,
        input_items=total,
        documents_done=done,
        complete=done >= total and not book.open,
        records=stats.records,
        failures=num_failures,
        failures_by_reason=dict(stats.failures),
        new_records_this_run=counters["new_records"],
        new_failures_this_run=counters["new_failures"],
        retried_this_run=counters["retried"],
        doc_tokens=stats.doc_tokens,
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        mean_completion_tokens=stats.completion_tokens / stats.records if stats.records else 0.0,
        mean_thinking_chars=stats.thinking_chars / stats.records if stats.records else 0.0,
        truncated_documents=stats.truncated_docs,
        cut_by_length_limit=stats.length_cut,
        stopped_by_loop_guard=stats.loop_stopped,
        loop_guard_tokens=stats.loop_stopped_tokens,
        duplicate_ids=stats.duplicates_kept + stats.failures.get("duplicate_id", 0),
        duplicate_ids_policy=cfg.duplicate_ids,
        sampling_sent_this_run=sent.sets,
        sampling_refused_this_run=sorted(sent.refused),
        wall_seconds=round(wall_s, 3),
        executor=extra,
        notices=notices,
        thinking_budget={**plan.as_dict(), "spent": stats.completion_tokens} if plan else None,
    )
    write_json(cfg.output / "summary.json", summary.to_json())
    return summary
