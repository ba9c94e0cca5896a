"""The unit of distributed work: the documents of one output shard that still need a record.

A unit is one shard k (input items [k*S, (k+1)*S)), so each unit's outcomes complete and commit exactly
one shard file, and a lost unit is simply sent again. Small shards (`--shard-size`) make small units,
which balance well across workers despite very different thinking lengths.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Outcome = tuple
"""A worker's answer for one document: ("record", index, record) or ("failure", index, reason, detail, id)."""


@dataclass(slots=True)
class Unit:
    shard: int
    docs: list[Any]
    """The shard's documents still to do (tpt.augment.generation.Document), in input order."""
    attempts: int = 0
    """Times a worker died while holding this unit."""
    indices: set[int] = field(default_factory=set)

    method = "run_unit"
    """The worker method that runs it: run_unit(shard, payload)."""

    def __post_init__(self) -> None:
        self.indices = {d.item.index for d in self.docs}

    @property
    def payload(self) -> Any:
        return self.docs

    @property
    def size(self) -> int:
        return len(self.docs)


def group_units(docs: Iterator[Any], shard_size: int) -> Iterator[Unit]:
    """Consecutive documents of the same shard, as one unit each (documents arrive in input order)."""
    shard, batch = -1, []
    for doc in docs:
        k = doc.item.index // shard_size
        if k != shard and batch:
            yield Unit(shard, batch)
            batch = []
        shard = k
        batch.append(doc)
    if batch:
        yield Unit(shard, batch)
