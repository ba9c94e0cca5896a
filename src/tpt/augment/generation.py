"""From a document to its record, whatever the executor: truncate to the teacher's budget, apply the
control-token policy, render the prompt, generate, extract the thinking.

`Job` is what every executor runs (local, a managed server's client, a Ray worker): the config and its
prompt template, picklable. `Job.records(backend, docs, fail)` yields (document, record) in completion
order; a document that yields no record is reported through `fail`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from tpt.augment.backends.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    request_seed,
    sampling_in_force,
)
from tpt.augment.budget import Plan
from tpt.augment.config import AugmentConfig
from tpt.augment.extract import extract_thinking
from tpt.augment.prompts import PromptTemplate
from tpt.core.jsontypes import JSONObject
from tpt.formats.corpus import Item, content_id
from tpt.formats.records import AugmentedRecord, ControlTokens, LoopStop, Provenance, RecordInput
from tpt.formats.text import readable_id

TRUNCATE_BATCH = 64  # documents tokenized together (batch encoding is much faster than one by one)
# Failure reasons of documents that passed the input checks: their id counts as seen (duplicate_ids.py).
CHECKED_FAILURES = frozenset({"generation_failed", "control_tokens", "repetition"})
EMPTY_AFTER_TRUNCATION = "no text left after truncation"


@dataclass(slots=True)
class Document:
    """One input item that passed the input checks, on its way to the teacher."""

    item: Item
    id: Any
    text: str
    source: str
    meta: JSONObject
    record: JSONObject
    duplicate_of: int | None = None
    """Input index of the first document with this id (kept with --duplicate-ids keep-both)."""


FailFn = Callable[..., None]
"""fail(item, reason, detail, doc_id=None): record that an input item produced no record."""
Outcomes = Iterator[tuple[Document, JSONObject]]
"""(document, record) pairs, in completion order."""


@dataclass(frozen=True)
class Job:
    """What turns documents into records on any executor (sent whole to Ray workers)."""

    cfg: AugmentConfig
    template: PromptTemplate
    plan: Plan | None = None
    """Each document's thinking cap under --thinking-budget (budget.py), the same on every executor."""

    def records(self, backend: Backend, docs: Iterator[Document], fail: FailFn) -> Outcomes:
        return generate_records(backend, docs, self.cfg, self.template, fail, self.plan)


# The one generation loop the local and Ray executors share (requests out, outcomes committed in order,
# long: loop guard, budget caps): its steps share the in-flight window, so they stay in one frame
def generate_records(
    backend: Backend,
    docs: Iterator[Document],
    cfg: AugmentConfig,
    template: PromptTemplate,
    fail: FailFn,
    plan: Plan | None = None,
) -> Outcomes:
    """Truncate, prompt, generate and extract: yields (document, record) in completion order; a document
    that yields no record is reported through `fail`. Shared by every executor."""
    inflight: dict[int, tuple[Document, str, int, bool, ControlTokens | None]] = {}
    # Backends whose server templates the prompt itself expose the teacher's control strings; the
    # in-process ones encode the document as text and need no policy (core/control_tokens.py).
    controls = getattr(backend, "control_strings", None)

    def requests() -> Iterator[GenerationRequest]:
        while batch := list(islice(docs, TRUNCATE_BATCH)):
            cut = backend.truncate([d.text for d in batch], cfg.max_doc_tokens)
            for doc, (kept, num_tokens, truncated) in zip(batch, cut, strict=True):
                if not kept.strip():
                    fail(doc.item, "empty_document", EMPTY_AFTER_TRUNCATION, doc.id)
                    continue
                sent, control = _control_policy(controls, cfg.control_tokens, kept)
                if control is not None and control.action == "rejected":
                    found = ", ".join(f"{s!r} x{n}" for s, n in control.found.items())
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
                    max_tokens=plan.cap(doc.text) if plan is not None else None,
                )

    provenance_base = {
        "backend": cfg.backend,
        "model": getattr(backend, "model_id", cfg.backend_options.get("model")),
        "template": template.name,
        "template_hash": template.hash,
        "sampling": sampling_in_force(backend, cfg.sampling),
        "loop_guard": cfg.sampling.loop_guard.as_dict(),
    }
    for result in backend.generate(requests(), cfg.sampling):
        doc, kept, num_tokens, truncated, control = inflight.pop(result.key)
        if result.error:
            fail(doc.item, "generation_failed", result.error, doc.id)
            continue
        loop = None
        if result.finish_reason == "repetition":  # the loop guard stopped it (loopguard.py)
            if cfg.loop_policy == "drop":
                detail = (
                    f"the loop guard stopped it after {result.completion_tokens} tokens; the loop began "
                    f"at token {result.loop_start} (--loop-policy drop)"
                )
                fail(doc.item, "repetition", detail, doc.id)
                continue
            loop = LoopStop(
                start_token=result.loop_start if result.loop_start is not None else result.completion_tokens,
                tokens=result.completion_tokens,
                policy=cfg.loop_policy,
            )
        thinking = extract_thinking(result)
        seed = request_seed(cfg.sampling.seed, str(doc.id))
        record = AugmentedRecord(
            id=doc.id,
            text=kept,
            thinking=thinking.text,
            finish_reason=result.finish_reason,
            stopped_by=thinking.stopped_by,
            thinking_closed=thinking.closed,
            thinking_method=thinking.method,
            doc_tokens=num_tokens,
            doc_truncated=truncated,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            source=doc.source,
            meta=doc.meta,
            input=RecordInput(file=doc.item.file, line=doc.item.line, index=doc.item.index),
            provenance=_provenance(provenance_base, seed, result, _budget_of(plan, doc.text)),
            control_tokens=control,
            duplicate_of=doc.duplicate_of,
            loop=loop,
        ).to_json()
        yield doc, record


def _provenance(
    base: JSONObject, seed: int | None, result: GenerationResult, budget: JSONObject | None
) -> Provenance:
    """The record's provenance: the run's, less the fields the server refused for this request, with
    this document's thinking cap under a --thinking-budget plan."""
    extra: JSONObject = {"thinking_budget": budget} if budget is not None else {}
    if not result.refused_fields:
        return Provenance(**base, seed=seed, attempts=result.attempts, **extra)
    refused = list(result.refused_fields)
    sampling = {k: v for k, v in base["sampling"].items() if k not in refused}
    return Provenance(
        **{**base, "sampling": sampling},
        seed=seed,
        attempts=result.attempts,
        sampling_refused=refused,
        **extra,
    )


def _budget_of(plan: Plan | None, text: str) -> JSONObject | None:
    if plan is None:
        return None
    return {"allocation": plan.allocation, "score": plan.score_of(text), "cap": plan.cap(text)}


def _control_policy(controls: Any, policy: str, text: str) -> tuple[str, ControlTokens | None]:
    """(the document as sent, what was done about its control strings: None when it has none)."""
    if controls is None:
        return text, None
    found = controls.find(text)
    if not found:
        return text, None
    action = {"neutralize": "neutralized", "reject": "rejected", "pass": "passed"}[policy]
    sent = controls.neutralize(text) if policy == "neutralize" else text
    return sent, ControlTokens(action=action, found=dict(sorted(found.items())))


def to_document(item: Item, fail: FailFn, cfg_text: str, cfg_id: str) -> Document | None:
    """Parse and check one input item; a problem is recorded through `fail` and gives None."""
    try:
        rec = item.parse()
    except ValueError as exc:
        # also invalid_utf8 and unencodable_text; the id still names the line whenever it can be read
        fail(item, getattr(exc, "reason", "malformed_line"), str(exc), readable_id(item.raw, cfg_id))
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
    return Document(item=item, id=doc_id, text=text, source=source, meta=meta, record=rec)
