"""The PACK_DIR format (`tpt pack` writes it, `tpt train` reads it) and the token kinds, defined once.

A PACK_DIR holds, per shard k, `shard-{k:05d}.tokens.npy` (rows, seq_len) uint16 or uint32 (uint16
when every id fits), `.kinds.npy` uint8 (the kind of each token, `KINDS`) and `.segments.npy` uint16
(the sample each token belongs to; `PAD_SEGMENT` on padding), written with np.save so that
`np.load(path, mmap_mode="r")` reads any row; and `index.json` (`index_json`), which lists the shards
and the facts a reader needs (seq_len, vocab_size, eos/pad/bos ids, the tokenizer directory). A shard
is written under a temporary name and renamed, so a reader never sees half a shard (the writer:
formats/packwriter.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, TypedDict

import numpy as np

from tpt.core.artifacts import read_json
from tpt.core.errors import ArtifactError, InputError

FORMAT = "tpt-packed-v1"

# Token kinds: what each token of a row is. 0-3 are what `tpt pack` writes; 4 is SFT's (sft/data).
KIND_PAD, KIND_DOCUMENT, KIND_THINKING, KIND_TEMPLATE, KIND_ASSISTANT = 0, 1, 2, 3, 4
KINDS: dict[int, str] = {
    KIND_PAD: "pad",
    KIND_DOCUMENT: "document",
    KIND_THINKING: "thinking",
    KIND_TEMPLATE: "template",
}
"""The kinds a PACK_DIR holds, as index.json lists them."""
LOSS_KINDS: dict[int, str] = {k: v for k, v in KINDS.items() if k != KIND_PAD}
"""The kinds that carry loss in packed data (logged separately by the training loop)."""
NUM_KINDS = 8
"""Every kind id is below this (the training loop's per-kind sums have this many slots)."""

PAD_SEGMENT = 65535
"""The segment id of padding; segments are uint16, so a row holds at most 65535 samples."""
PARTS = ("tokens", "kinds", "segments")
TOKEN_DTYPES = (np.dtype(np.uint16), np.dtype(np.uint32))
KIND_DTYPE = np.dtype(np.uint8)
SEGMENT_DTYPE = np.dtype(np.uint16)
PART_DTYPES: dict[str, tuple[np.dtype, ...]] = {
    "tokens": TOKEN_DTYPES,
    "kinds": (KIND_DTYPE,),
    "segments": (SEGMENT_DTYPE,),
}


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    return TOKEN_DTYPES[0] if vocab_size <= 1 << 16 else TOKEN_DTYPES[1]


def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def part_path(pack_dir: Path, name: str, part: str) -> Path:
    return Path(pack_dir) / f"{name}.{part}.npy"


class ShardEntry(TypedDict):
    """One shard as index.json lists it."""

    name: str
    rows: int


class PackIndex(TypedDict, total=False):
    """index.json: the contract's keys (docs/architecture.md), then the facts pack adds."""

    format: str
    seq_len: int
    dtype: str
    vocab_size: int
    eos_id: int | None
    pad_id: int | None
    bos_id: int | None
    bos_token: str | None
    mode: str
    document_text: str
    tokenizer: str
    """The student tokenizer's directory, relative to the PACK_DIR."""
    num_rows: int
    shards: list[ShardEntry]
    kinds: dict[str, str]
    segments_pad: int
    packing: str
    raw_fraction: float
    template: dict[str, str | None]
    stats: str
    megatron: str | None


class RowBlock(Protocol):
    """Rows as the packer makes them: three (rows, seq_len) arrays."""

    tokens: np.ndarray
    kinds: np.ndarray
    segments: np.ndarray


def index_json(
    *,
    seq_len: int,
    dtype: np.dtype,
    vocab_size: int,
    eos_id: int | None,
    pad_id: int | None,
    bos_id: int | None,
    bos_token: str | None,
    mode: str,
    document_text: str,
    shards: list[ShardEntry],
    tokenizer: str = "tokenizer",
    **extra: Any,
) -> PackIndex:
    """The index.json object: the contract's keys in their order, then `extra` (pack's own facts)."""
    index: PackIndex = {
        "format": FORMAT,
        "seq_len": seq_len,
        "dtype": np.dtype(dtype).name,
        "vocab_size": vocab_size,
        "eos_id": eos_id,
        "pad_id": pad_id,
        # The BOS convention (pack/bos.py): every sample starts with bos_id; null: none does.
        "bos_id": bos_id,
        "bos_token": bos_token,
        "mode": mode,
        "document_text": document_text,
        "tokenizer": tokenizer,
        "num_rows": sum(int(s["rows"]) for s in shards),
        "shards": shards,
        "kinds": {str(k): v for k, v in KINDS.items()},
        "segments_pad": PAD_SEGMENT,
    }
    index.update(extra)  # type: ignore[typeddict-item]
    return index


def read_pack_index(pack_dir: Path) -> PackIndex:
    """index.json of a PACK_DIR, checked against the contract; a clear error for anything else."""
    if not pack_dir.is_dir():
        raise InputError(f"data directory {pack_dir} does not exist")
    if not (pack_dir / "index.json").is_file():
        raise InputError(f"{pack_dir} is not packed tpt data (no index.json); run `tpt pack` to make it")
    index: PackIndex = read_json(pack_dir / "index.json")
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        got = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise InputError(f"{pack_dir}/index.json has format {got!r}, expected {FORMAT!r}; re-run `tpt pack`")
    for key in ("seq_len", "vocab_size", "shards", "tokenizer"):
        if key not in index:
            raise ArtifactError(f"{pack_dir}/index.json lacks {key!r}; re-run `tpt pack`")
    if not isinstance(index["shards"], list) or not index["shards"]:
        raise InputError(f"{pack_dir}/index.json lists no shards")
    if not (pack_dir / index["tokenizer"]).is_dir():
        raise ArtifactError(f"{pack_dir}/{index['tokenizer']}/ (the student tokenizer) is missing")
    return index


def open_part(pack_dir: Path, name: str, part: str, *, rows: int, seq_len: int) -> np.ndarray:
    """One part of one shard, memory-mapped, checked against index.json's rows and seq_len."""
    path = part_path(pack_dir, name, part)
    dtypes = PART_DTYPES[part]
    try:
        arr = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing (listed in {pack_dir}/index.json)") from None
    except ValueError as exc:
        raise ArtifactError(f"{path} is not a readable .npy file ({exc})") from None
    if arr.ndim != 2 or arr.shape != (rows, seq_len):
        raise ArtifactError(f"{path} has shape {arr.shape}, expected ({rows}, {seq_len}) per index.json")
    if arr.dtype not in dtypes:
        raise ArtifactError(f"{path} has dtype {arr.dtype}, expected {' or '.join(d.name for d in dtypes)}")
    return arr
