"""Exact, cheaper tokenization for byte-level BPE tokenizers: cache the ids of space-separated pieces.

`tpt pack` spends most of its time in the tokenizer. For the byte-level BPE family (GPT-2, Llama-3,
Qwen2, and what `tpt tokenizer train` makes), a text's ids are the concatenation of the ids of its
*pieces*: cut the text at every U+0020 space whose two neighbours are not whitespace, keep the space
at the start of the next piece, and encode each piece alone. Why that is exact:

- The pre-tokenizer regexes listed in PATTERNS never put such a space inside a match except as the
  match's first character (letter, digit and symbol runs take at most one leading space; whitespace
  runs cannot start before it, since its left neighbour is not whitespace). So the matches tile the
  text with a boundary exactly at the space, and each match sees the same characters as in the whole
  text (a piece ends with a non-whitespace character followed by a space, which stops every run just
  as the end of the piece does; the only lookahead, `\\s+(?!\\S)`, cannot reach it).
- BPE merges never cross pre-token boundaries, NFC never composes across a space, and added tokens
  that neither strip whitespace nor contain it are matched inside one piece.

So the piece " word," has the same ids wherever it occurs, and a dict from piece to ids replaces most
of the work of the Rust tokenizer (its pre-tokenizer regex, per-token strings and offsets) with a
`str.split`, dict look-ups and one `bytes.join`. Pieces the cache does not hold are encoded by the
tokenizer itself, in one batch. Whitespace is judged by `str.isspace`, which counts every Unicode
White_Space character and a few more (U+001C..U+001F), so a doubtful boundary is never cut.

Any other tokenizer, or a tokenizer.json outside the conditions in `piece_encoder_for`, is encoded by
the tokenizer directly; tests compare both paths on adversarial texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from itertools import compress, count, islice, repeat
from operator import is_
from typing import Any

import numpy as np

# Pre-tokenizer split patterns whose matches tile a text at every space between non-whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PATTERNS = frozenset(
    {
        GPT2_PATTERN,
        # Llama-3 and cl100k_base.
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        # Qwen2 / Qwen2.5 / Qwen3.
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    }
)
NORMALIZERS = (None, {"type": "NFC"})
DEFAULT_CAPACITY = 1 << 19
"""Cached pieces per process: about 150 bytes each, so about 80 MB when full."""

# A space whose neighbours are both non-whitespace: where a text with irregular spacing is cut.
_CUT = re.compile(r"(?<=\S) (?=\S)")


def piece_encoder_for(tokenizer: Any, capacity: int = DEFAULT_CAPACITY) -> PieceEncoder | None:
    """A PieceEncoder for `tokenizer` (a tokenizers.Tokenizer), or None when it is not exact for it."""
    if capacity <= 0:
        return None
    reason = unsupported_reason(json.loads(tokenizer.to_str()))
    return None if reason else PieceEncoder(tokenizer, capacity)


def unsupported_reason(spec: dict[str, Any]) -> str | None:
    """Why piece caching would not be exact for this tokenizer.json (None: it is)."""
    if spec.get("normalizer") not in NORMALIZERS:
        return f"normalizer {spec.get('normalizer')!r}"
    if not _supported_pre_tokenizer(spec.get("pre_tokenizer")):
        return f"pre_tokenizer {spec.get('pre_tokenizer')!r}"
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("dropout"):
        return f"model {model.get('type')!r} with dropout {model.get('dropout')!r}"
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return "BPE with a subword prefix or suffix"
    for token in spec.get("added_tokens") or []:
        content = token.get("content", "")
        if token.get("lstrip") or token.get("rstrip") or token.get("single_word"):
            return f"added token {content!r} strips whitespace or matches single words"
        if any(c.isspace() for c in content):
            return f"added token {content!r} contains whitespace"
    return None


def _supported_pre_tokenizer(pre: Any) -> bool:
    if not isinstance(pre, dict):
        return False
    if pre.get("type") == "ByteLevel":
        return pre.get("use_regex", True) and not pre.get("add_prefix_space", True)
    if pre.get("type") != "Sequence":
        return False
    steps = pre.get("pretokenizers") or []
    if len(steps) != 2:
        return False
    split, byte_level = steps
    return (
        split.get("type") == "Split"
        and (split.get("pattern") or {}).get("Regex") in PATTERNS
        and split.get("behavior") == "Isolated"
        and not split.get("invert")
        and byte_level.get("type") == "ByteLevel"
        and not byte_level.get("use_regex", True)
        and not byte_level.get("add_prefix_space", True)
    )


def _clean(piece: str) -> bool:
    """A piece that can sit between two cuts: non-empty, no whitespace at either end."""
    return bool(piece) and not piece[0].isspace() and not piece[-1].isspace()


class PieceEncoder:
    """Encodes batches of texts to ids through a bounded cache of piece ids (see the module doc)."""

    def __init__(self, tokenizer: Any, capacity: int = DEFAULT_CAPACITY) -> None:
        self._tokenizer = tokenizer
        self.capacity = capacity
        # piece -> uint32 ids as bytes: of " " + piece (body pieces), or of the piece alone (heads).
        self._body: dict[str, bytes] = {}
        self._head: dict[str, bytes] = {}
        self.pieces = 0
        self.misses = 0

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids uint32, offsets int64 of len(texts) + 1): text i is ids[offsets[i]:offsets[i+1]]."""
        head_get, body_get = self._head.get, self._body.get
        join = b"".join
        parts: list[Any] = [None] * (2 * len(texts))
        pending: list[_Text] = []
        for i, text in enumerate(texts):
            pieces = text.split(" ")
            self.pieces += len(pieces)
            values = list(map(body_get, islice(pieces, 1, None)))
            head = head_get(pieces[0])
            if head is None or None in values:
                pending.append(_Text(i, pieces, values))
            else:
                parts[2 * i] = head
                parts[2 * i + 1] = join(values)
        if pending:
            self._resolve(texts, pending, parts)
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths.reshape(-1, 2).sum(axis=1) // 4, out=offsets[1:])
        return np.frombuffer(join(parts), dtype=np.uint32), offsets

    def _resolve(self, texts: Sequence[str], pending: list[_Text], parts: list[Any]) -> None:
        """Texts with a piece not cached: cut each exactly, encode the new pieces in one batch."""
        new_heads: dict[str, Any] = {}
        new_bodies: dict[str, Any] = {}
        for text in pending:
            new_bodies.update(dict.fromkeys(text.missing()))
        # Cached pieces are clean; of the new ones, few are not (two spaces, a space by a newline).
        unclean = {p for p in new_bodies if not _clean(p)}
        for p in unclean:
            del new_bodies[p]
        for text in pending:
            pieces = text.pieces
            if len(pieces) > 1 and (not _clean(pieces[0][-1:]) or not unclean.isdisjoint(text.names)):
                # Irregular spacing: cut only where exact. Middle pieces of the cut are clean; the
                # last may end in whitespace (exact there only, never cached).
                text.pieces = _CUT.split(texts[text.index])
                text.values = list(map(self._body.get, islice(text.pieces, 1, None)))
                new_bodies.update(dict.fromkeys(text.missing()))
            if text.pieces[0] not in self._head:
                new_heads[text.pieces[0]] = None
        heads, bodies = list(new_heads), list(new_bodies)
        encoded = self._tokenizer.encode_batch_fast(
            heads + [" " + p for p in bodies], add_special_tokens=False
        )
        self.misses += len(encoded)
        as_bytes = [np.asarray(e.ids, dtype=np.uint32).tobytes() for e in encoded]
        new_heads.update(zip(heads, as_bytes, strict=False))  # the heads' encodings come first
        new_bodies.update(zip(bodies, as_bytes[len(heads) :], strict=True))
        room = self.capacity - len(self._head)
        # A head is reused only when it ends in non-whitespace (a cut may follow it).
        self._head.update(islice(((p, new_heads[p]) for p in heads if _clean(p[-1:])), max(room, 0)))
        room = self.capacity - len(self._body)
        self._body.update(islice(((p, new_bodies[p]) for p in bodies if _clean(p)), max(room, 0)))
        for text in pending:
            values = text.values
            for k, name in zip(text.slots, text.names, strict=True):
                values[k] = new_bodies[name]
            head = self._head.get(text.pieces[0])
            parts[2 * text.index] = new_heads[text.pieces[0]] if head is None else head
            parts[2 * text.index + 1] = b"".join(values)


class _Text:
    """A text being resolved: its pieces, their cached ids (None where missing), what is missing."""

    __slots__ = ("index", "pieces", "values", "slots", "names")

    def __init__(self, index: int, pieces: list[str], values: list[bytes | None]) -> None:
        self.index = index
        self.pieces = pieces
        self.values = values
        self.slots: list[int] = []
        self.names: list[str] = []

    def missing(self) -> list[str]:
        """Find the pieces with no cached ids: their slots in `values`, and the pieces themselves."""
        mask = list(map(is_, self.values, repeat(None)))
        self.slots = list(compress(count(), mask))
        self.names = list(compress(islice(self.pieces, 1, None), mask))
        return self.names
