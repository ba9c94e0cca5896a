"""Turn planned records into token samples: the ids of a batch's texts, then assembly.

Texts are encoded in worker processes (workers.py), through the piece cache (pieces.py) where it is
exact, else with `encode_batch_fast`, which skips the character offsets that packing never needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tpt.formats.packfile import KIND_DOCUMENT, KIND_TEMPLATE, KIND_THINKING
from tpt.pack.packing import Sample
from tpt.pack.template import EncodedTemplate


@dataclass(frozen=True, slots=True)
class EncodedTexts:
    """Token ids of a batch of texts, concatenated: text i is `ids[offsets[i]:offsets[i + 1]]`."""

    ids: np.ndarray  # (total,) uint32
    offsets: np.ndarray  # (num_texts + 1,) int64

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> EncodedTexts:
    """Encode without special tokens (the sample format adds its own EOS)."""
    encodings = tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
    offsets = np.zeros(len(encodings) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings)), out=offsets[1:])
    ids = np.fromiter(
        itertools.chain.from_iterable(e.ids for e in encodings),
        dtype=np.uint32,
        count=int(offsets[-1]),
    )
    return EncodedTexts(ids, offsets)


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """A kept record: where its texts sit in the batch's encoding, and the samples it becomes."""

    document: int  # index of the document text in the batch
    thinking: int  # index of the thinking text, -1 when no copy needs it
    raw_flags: tuple[bool, ...]  # one per sample: True = raw document, False = augmented
    source: int
    ordinal: int = -1  # the record's position in the input

    @property
    def augmented_copies(self) -> int:
        return sum(not raw for raw in self.raw_flags)


def assemble(
    records: Sequence[PlannedRecord],
    encoded: EncodedTexts,
    template: EncodedTemplate,
    thinking: Sequence[Sequence[np.ndarray]] | None = None,
) -> list[Sample]:
    """Build every sample of the batch, in record order, copies adjacent.

    `thinking` (the controls, pack/controls.py): per record, the thinking ids of each of its augmented
    samples, in place of its own; every other token of the sample is the same."""
    eos = np.array([template.eos_id], dtype=np.uint32)
    literals = template.template.pieces
    samples: list[Sample] = []
    for r, rec in enumerate(records):
        doc = encoded[rec.document]
        raw = _with_bos(
            Sample(
                np.concatenate([doc, eos]),
                ((KIND_DOCUMENT, len(doc)), (KIND_TEMPLATE, 1)),
                rec.source,
                False,
            ),
            template.bos_id,
        )
        augmented = None
        copy = 0
        for is_raw in rec.raw_flags:
            if is_raw:
                samples.append(raw)
                continue
            if thinking is not None:
                ids = thinking[r][copy]
                copy += 1
                samples.append(
                    _with_bos(_augmented(doc, ids, literals, template, eos, rec.source), template.bos_id)
                )
                continue
            if augmented is None:
                augmented = _with_bos(
                    _augmented(doc, encoded[rec.thinking], literals, template, eos, rec.source),
                    template.bos_id,
                )
            samples.append(augmented)
    return samples


def _with_bos(sample: Sample, bos_id: int | None) -> Sample:
    """The sample with the BOS token in front (a template token), when the convention has one."""
    if bos_id is None:
        return sample
    ids = np.concatenate([np.array([bos_id], dtype=np.uint32), sample.ids])
    return Sample(ids, ((KIND_TEMPLATE, 1), *sample.runs), sample.source, sample.augmented)


def _augmented(
    doc: np.ndarray,
    thinking: np.ndarray,
    pieces: Sequence[tuple[str, str]],
    template: EncodedTemplate,
    eos: np.ndarray,
    source: int,
) -> Sample:
    parts, runs, literal = [], [], 0
    for kind, _ in pieces:
        if kind == "document":
            part, code = doc, KIND_DOCUMENT
        elif kind == "thinking":
            part, code = thinking, KIND_THINKING
        else:
            part, code = template.literal_ids[literal], KIND_TEMPLATE
            literal += 1
        if len(part):
            parts.append(part)
            runs.append((code, len(part)))
    parts.append(eos)
    runs.append((KIND_TEMPLATE, 1))
    return Sample(np.concatenate(parts), tuple(runs), source, True)
