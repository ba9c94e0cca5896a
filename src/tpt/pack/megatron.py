"""Write samples in Megatron-LM's indexed-dataset format (`.bin` + `.idx`, "MMIDIDX"), for Megatron/NeMo.

One sequence per sample (document, template and thinking, EOS included), in packed order, one document
per sequence; Megatron's GPTDataset does its own packing into its sequence length. The layout follows
megatron/core/datasets/indexed_dataset.py (_IndexWriter): header b"MMIDIDX\\x00\\x00", version <Q 1,
dtype code <B, sequence count <Q, document count <Q, then int32 sequence lengths, int64 byte pointers
and int64 document indices [0, 1, ..., n].
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tpt.pack.packing import Sample

INDEX_HEADER = b"MMIDIDX\x00\x00"
# Megatron's DType codes.
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}


def megatron_dtype(vocab_size: int) -> np.dtype:
    """Megatron's own choice (DType.optimal_dtype): uint16 below 65500 tokens, else int32."""
    return np.dtype(np.uint16) if vocab_size < 65500 else np.dtype(np.int32)


class MegatronWriter:
    """Appends samples to PREFIX.bin as they come and writes PREFIX.idx at close.

    Resumable (pack/commits.py): `take()` hands over the lengths written since the last call (a
    commit's part) with the .bin's size then; `resume=size` reopens the .bin of a killed run cut back
    to a committed size, and `close(earlier)` writes the index from the committed parts and the rest."""

    def __init__(self, prefix: Path, vocab_size: int, *, resume: int | None = None) -> None:
        self.prefix = Path(prefix)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.dtype = megatron_dtype(vocab_size)
        # One writer per output directory (storage/outputlock.py): the name is fixed so a resumed run
        # finds the file a killed one was appending to.
        self._tmp_bin = self.prefix.with_name(f".{self.prefix.name}.bin.tmp")
        if resume is None:
            self._bin = open(self._tmp_bin, "wb")
        else:
            self._bin = open(self._tmp_bin, "r+b")
            self._bin.truncate(resume)
            self._bin.seek(resume)
        self._lengths: list[int] = []

    def add(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        self._bin.write(np.concatenate([s.ids for s in samples]).astype(self.dtype).tobytes())
        self._lengths.extend(len(s.ids) for s in samples)

    def take(self) -> tuple[np.ndarray, int]:
        """The lengths added since the last take (int32) and the .bin's size, flushed to disk."""
        self._bin.flush()
        os.fsync(self._bin.fileno())
        lengths, self._lengths = np.asarray(self._lengths, dtype=np.int32), []
        return lengths, self._bin.tell()

    def close(self, earlier: np.ndarray | None = None) -> None:
        """Write the index; `earlier`: the lengths already taken (the committed parts), in order."""
        self._bin.close()
        lengths = np.asarray(self._lengths, dtype=np.int32)
        if earlier is not None:
            lengths = np.concatenate([np.asarray(earlier, dtype=np.int32), lengths])
        pointers = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1].astype(np.int64) * self.dtype.itemsize, out=pointers[1:])
        documents = np.arange(len(lengths) + 1, dtype=np.int64)
        tmp_idx = self.prefix.with_name(f".{self.prefix.name}.idx.tmp-{os.getpid()}")
        with open(tmp_idx, "wb") as f:
            f.write(INDEX_HEADER)
            f.write(struct.pack("<Q", 1))
            f.write(struct.pack("<B", DTYPE_CODES[self.dtype]))
            f.write(struct.pack("<Q", len(lengths)))
            f.write(struct.pack("<Q", len(documents)))
            f.write(lengths.tobytes(order="C"))
            f.write(pointers.tobytes(order="C"))
            f.write(documents.tobytes(order="C"))
        os.replace(self._tmp_bin, self.prefix.with_suffix(".bin"))
        os.replace(tmp_idx, self.prefix.with_suffix(".idx"))

    def abort(self) -> None:
        """Stop writing; the partial .bin stays for a resumed run (a new run replaces it)."""
        self._bin.close()


def read_megatron(prefix: Path) -> list[np.ndarray]:
    """Read every sequence back (for checks and tests; Megatron reads the files itself)."""
    prefix = Path(prefix)
    data = prefix.with_suffix(".idx").read_bytes()
    if data[:9] != INDEX_HEADER or struct.unpack_from("<Q", data, 9)[0] != 1:
        raise ValueError(f"{prefix}.idx is not a Megatron MMIDIDX v1 index")
    code = struct.unpack_from("<B", data, 17)[0]
    dtype = {v: k for k, v in DTYPE_CODES.items()}[code]
    count, _docs = struct.unpack_from("<QQ", data, 18)
    lengths = np.frombuffer(data, dtype=np.int32, count=count, offset=34)
    pointers = np.frombuffer(data, dtype=np.int64, count=count, offset=34 + 4 * count)
    tokens = np.memmap(prefix.with_suffix(".bin"), dtype=np.uint8, mode="r")
    return [
        np.frombuffer(tokens, dtype=dtype, count=int(n), offset=int(p))
        for n, p in zip(lengths, pointers, strict=True)
    ]
