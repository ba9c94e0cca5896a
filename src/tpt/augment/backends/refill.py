"""Batches that refill rows as they finish, for the transformers backend (see its module doc).

A row that stops leaves the batch at once and, when enough slots are free, new prompts are
prefilled and merged into the running KV cache with left padding. The KV cache grows in place
(`GrowingLayer`), and each row samples from its own random stream (`sample_tokens`).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer as _DynamicLayer

from tpt.augment.backends.base import GenerationRequest, GenerationResult, SamplingParams
from tpt.augment.loopguard import FINISH_REPETITION, LoopGuard


@dataclass(slots=True, eq=False)
class Row:
    """One request in flight: its prompt, its sampling stream and what it has generated so far."""

    request: GenerationRequest
    prompt_ids: list[int]
    prefilled_think: bool
    budget: int
    """Most tokens this row may generate: max_tokens, or less where the context ends first."""
    rng: random.Random
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    stopped_by: str | None = None
    """The stop string that ended the row, 'eos', or 'loop_guard'."""
    guard: LoopGuard | None = None
    """The row's loop guard (None: off), fed each token the row takes."""


@dataclass(frozen=True, slots=True)
class Decoder:
    """What the running batch needs from the teacher, passed in by the backend that owns them."""

    model: Any
    tokenizer: Any
    cache_kw: str
    """The forward() keyword of the KV cache: transformers 5.x says `cache`, 4.x `past_key_values`."""
    pad_id: int
    eos_ids: frozenset[int]
    max_prefill_tokens: int
    """Padded prompt tokens per prefill pass."""


RowWatch = Callable[[Row], "str | None"]
"""watch(row), after each token a row takes: a string ends the row there (finish_reason 'stop',
stopped_by that string); None lets it go on. The hook for checks on what a row is generating."""


def row_result(row: Row, decoder: Decoder, stops: tuple[str, ...]) -> GenerationResult:
    """The result of a finished row: its text without the end-of-sequence token, cut at a stop string."""
    ids = row.generated
    loop_start = row.guard.loop_start if row.finish_reason == FINISH_REPETITION and row.guard else None
    if loop_start is not None:  # the thinking before the loop began
        ids = ids[:loop_start]
    elif ids and ids[-1] in decoder.eos_ids:
        ids = ids[:-1]
    text = decoder.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    if cuts:
        text = text[: min(cuts)]
    return GenerationResult(
        key=row.request.key,
        text=text,
        prefilled_think=row.prefilled_think,
        finish_reason=row.finish_reason or "length",
        stop=row.stopped_by,
        prompt_tokens=len(row.prompt_ids),
        completion_tokens=len(row.generated),
        loop_start=loop_start,
    )


class Lookahead:
    """Pulls requests `size` at a time, prepares them and hands them out shortest prompt first."""

    def __init__(self, source: Iterator[GenerationRequest], prepare: Any, size: int) -> None:
        self.source, self.prepare, self.size = source, prepare, size
        self.ready: deque[Row] = deque()
        self.exhausted = False

    def take(self, n: int) -> tuple[list[Row], list[GenerationResult]]:
        errors: list[GenerationResult] = []
        if n > 0 and not self.ready and not self.exhausted:
            chunk = list(islice(self.source, self.size))
            self.exhausted = len(chunk) < self.size
            rows = []
            for request in chunk:
                item = self.prepare(request)
                (errors if isinstance(item, GenerationResult) else rows).append(item)
            # Sorting within the window keeps rows admitted together close in length (less padding),
            # while the bounded window keeps memory flat and no request waits for more than one
            # window.
            rows.sort(key=lambda r: len(r.prompt_ids))
            self.ready.extend(rows)
        taken = [self.ready.popleft() for _ in range(min(n, len(self.ready)))]
        return taken, errors


class Batch:
    """The running batch: rows, their left-padded KV cache, mask, positions and next tokens."""

    def __init__(self, decoder: Decoder, sampling: SamplingParams, *, watch: RowWatch | None = None) -> None:
        self.d, self.sampling, self.watch = decoder, sampling, watch
        self.penalized = sampling.penalties() != {
            "repetition_penalty": 1.0,
            "frequency_penalty": 0.0,
            "presence_penalty": 0.0,
        }
        self.stops = tuple(s for s in sampling.stop if s)
        # Tokens to re-decode each step to spot a stop string: every token is at least one
        # character.
        self.stop_window = max((len(s) for s in self.stops), default=0) + 2
        self.device = next(decoder.model.parameters()).device
        self.rows: list[Row] = []
        self.cache: Any = None
        self.mask: Any = None  # (B, L) bool: real token or padding
        self.next_pos: Any = None  # (B,) position of the token fed next
        self.next_tok: Any = None  # (B,) the token fed next (sampled, not yet in the cache)
        self.can_merge = True  # False for caches we cannot left-pad (sliding-window or linear layers)
        # On CPU, keep one padding column in front of every batch. With no padding at all,
        # transformers drops the mask and runs grouped-query attention through SDPA's enable_gqa,
        # which the CPU kernels serve by repeating keys and values: a decode step of SmolLM2 at
        # batch 16 took 141 ms instead of 55 ms (benchmarks/augment_embedded.py). A masked column
        # changes no result; it keeps the masked path, which reads each key/value head once.
        self.sentinel = 1 if self.device.type == "cpu" else 0

    def clear(self) -> None:
        self.rows, self.cache, self.mask, self.next_pos, self.next_tok = [], None, None, None, None

    def admit(self, rows: list[Row]) -> Iterator[GenerationResult]:
        """Prefill new rows in bounded groups, sample their first token and merge them in."""
        for group in self._groups(rows):
            try:
                part = self._prefill(group)
            except (RuntimeError, ValueError) as exc:
                for row in group:
                    yield GenerationResult(key=row.request.key, error=f"prefill failed: {exc}")
                continue
            self._merge(group, *part)
            yield from self._advance(part[-1], offset=len(self.rows) - len(group))

    def step(self) -> Iterator[GenerationResult]:
        """Feed every row its next token, sample the one after it and retire rows that are done."""
        ones = torch.ones((len(self.rows), 1), dtype=torch.bool, device=self.device)
        mask = torch.cat([self.mask, ones], dim=1)
        with torch.inference_mode():
            out = self.d.model(
                input_ids=self.next_tok[:, None],
                attention_mask=mask,
                position_ids=self.next_pos[:, None],
                use_cache=True,
                **{self.d.cache_kw: self.cache},
            )
        self.mask, self.next_pos = mask, self.next_pos + 1
        yield from self._advance(self._sample(out.logits[:, -1, :]))

    def fail_all(self, reason: str) -> Iterator[GenerationResult]:
        rows = self.rows
        self.clear()
        for row in rows:
            yield GenerationResult(key=row.request.key, prompt_tokens=len(row.prompt_ids), error=reason)

    # -- internals -------------------------------------------------------------------------------

    def _groups(self, rows: list[Row]) -> Iterator[list[Row]]:
        # rows arrive sorted by length; cut them where the padded size (rows x longest) would pass
        # the cap
        group: list[Row] = []
        for row in rows:
            longest = max([len(r.prompt_ids) for r in group] + [len(row.prompt_ids)])
            if group and (len(group) + 1) * longest > self.d.max_prefill_tokens:
                yield group
                group = []
            group.append(row)
        if group:
            yield group

    def _prefill(self, rows: list[Row]) -> tuple[Any, Any, Any, Any]:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        longest = max(len(r.prompt_ids) for r in rows) + self.sentinel
        ids = torch.full((len(rows), longest), self.d.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.bool)
        for i, row in enumerate(rows):  # left padding: ids [p p a b c] mask [0 0 1 1 1] positions [0 0 0 1 2]
            ids[i, longest - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            mask[i, longest - len(row.prompt_ids) :] = True
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.d.model.config)
        if all(type(layer) is DynamicLayer for layer in cache.layers):
            cache.layers = [GrowingLayer() for _ in cache.layers]
        with torch.inference_mode():
            out = self.d.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,  # only the last position's logits: (k, 1, V), not (k, P, V)
                **{self.d.cache_kw: cache},
            )
        first = self._sample(out.logits[:, -1, :], rows)
        return cache, mask, positions[:, -1] + 1, first

    def _merge(self, rows: list[Row], cache: Any, mask: Any, next_pos: Any, first: Any) -> None:
        if self.cache is None:
            self.rows, self.cache, self.mask, self.next_pos, self.next_tok = (
                rows,
                cache,
                mask,
                next_pos,
                first,
            )
            self.can_merge = all(type(layer) is GrowingLayer for layer in cache.layers)
            return
        # Left-pad the shorter side so both caches end at the same column, then stack along the
        # batch: running (L=5) [. a b c d] + new (P=3) [x y z] -> [. a b c d] / [. . x y z]
        length, new_length = self.mask.shape[1], mask.shape[1]
        width = max(length, new_length)
        for old_layer, new_layer in zip(self.cache.layers, cache.layers, strict=True):
            for name in ("keys", "values"):
                old = left_pad(getattr(old_layer, name), width - length, dim=2)
                new = left_pad(getattr(new_layer, name), width - new_length, dim=2)
                setattr(old_layer, name, torch.cat([old, new], dim=0))
        self.mask = torch.cat(
            [
                left_pad(self.mask, width - length, dim=1),
                left_pad(mask, width - new_length, dim=1),
            ]
        )
        self.next_pos = torch.cat([self.next_pos, next_pos])
        self.next_tok = torch.cat([self.next_tok, first])
        self.rows = self.rows + rows

    def _sample(self, logits: Any, rows: list[Row] | None = None) -> Any:
        rows = self.rows if rows is None else rows
        if self.penalized:
            logits = apply_penalties(logits, rows, self.sampling)
        draws = torch.tensor([row.rng.random() for row in rows], dtype=torch.float32, device=logits.device)
        return sample_tokens(logits, self.sampling.temperature, self.sampling.top_p, draws)

    def _advance(self, tokens: Any, offset: int = 0) -> Iterator[GenerationResult]:
        """Append tokens to rows offset..; retire rows done at EOS, a stop string or budget."""
        rows = self.rows[offset:]
        for row, token in zip(rows, tokens.tolist(), strict=True):
            row.generated.append(token)
            if token in self.d.eos_ids:
                row.finish_reason, row.stopped_by = "stop", "eos"
        if self.stops:
            tails = self.d.tokenizer.batch_decode(
                [row.generated[-self.stop_window :] for row in rows], skip_special_tokens=True
            )
            for row, tail in zip(rows, tails, strict=True):
                hit = next((s for s in self.stops if s in tail), None)
                if row.finish_reason is None and hit is not None:
                    row.finish_reason, row.stopped_by = "stop", hit
        for row in rows:  # a looping row leaves the batch now: its slot goes to the next prompt
            if row.finish_reason is None and row.guard is not None and row.guard.feed(row.generated[-1]):
                row.finish_reason, row.stopped_by = FINISH_REPETITION, "loop_guard"
        if self.watch is not None:
            for row in rows:
                if row.finish_reason is None and (why := self.watch(row)) is not None:
                    row.finish_reason, row.stopped_by = "stop", why
        self.next_tok[offset:] = tokens
        done = [
            offset + i for i, row in enumerate(rows) if row.finish_reason or len(row.generated) >= row.budget
        ]
        if done:
            finished = [self.rows[i] for i in done]
            self._retire(done)
            for row in finished:
                yield row_result(row, self.d, self.stops)

    def _retire(self, done: list[int]) -> None:
        gone = set(done)
        keep_idx = [i for i in range(len(self.rows)) if i not in gone]
        if not keep_idx:
            self.clear()
            return
        keep = torch.tensor(keep_idx, device=self.device)
        self.rows = [self.rows[i] for i in keep_idx]
        self.mask, self.next_pos, self.next_tok = (
            self.mask[keep],
            self.next_pos[keep],
            self.next_tok[keep],
        )
        self.cache.batch_select_indices(keep)
        # Columns that are padding in every remaining row cost attention time for nothing: drop
        # them.
        start = int(self.mask.any(dim=0).to(torch.uint8).argmax()) - self.sentinel
        if start > 0 and self.can_merge:
            self.mask = self.mask[:, start:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]


def apply_penalties(logits: Any, rows: list[Row], sampling: SamplingParams) -> Any:
    """The repetition, frequency and presence penalties on each row's logits (B, V), as vLLM applies
    them: repetition over the prompt and the output (logit / p when positive, * p when negative),
    frequency (x count) and presence (once) over the output only."""
    logits = logits.to(torch.float32, copy=True)  # the model's output (an inference tensor) stays as it was
    rep, freq, pres = sampling.repetition_penalty, sampling.frequency_penalty, sampling.presence_penalty
    vocab = logits.shape[-1]
    for i, row in enumerate(rows):
        if rep != 1.0:
            seen = torch.tensor(row.prompt_ids + row.generated, device=logits.device).unique()
            seen = seen[seen < vocab]
            values = logits[i, seen]
            logits[i, seen] = torch.where(values > 0, values / rep, values * rep)
        if (freq or pres) and row.generated:
            out = torch.tensor(row.generated, device=logits.device)
            counts = torch.bincount(out[out < vocab], minlength=vocab).to(logits.dtype)
            logits[i] -= freq * counts + pres * (counts > 0).to(logits.dtype)
    return logits


def left_pad(tensor: Any, amount: int, *, dim: int) -> Any:
    if amount == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = amount
    return torch.cat([torch.zeros(shape, dtype=tensor.dtype, device=tensor.device), tensor], dim=dim)


def sample_tokens(logits: Any, temperature: float, top_p: float, draws: Any) -> Any:
    """One token per row: greedy at temperature 0, else nucleus (top-p) sampling by inverse CDF.

    logits (B, V); draws (B,) uniforms in [0, 1). The nucleus is the smallest set of most likely
    tokens whose probability reaches top_p: probs sorted [0.5 0.3 0.15 0.05], top_p 0.9 -> mass
    before each token [0 0.5 0.8 0.95] -> keep the first three. The draw is scaled to the kept mass
    and located in its CDF. Sorting the whole vocabulary costs half a decode step on CPU (49k
    entries per row), so the candidates come from top-k with k growing 64 -> 1024 -> V until the
    top-k mass of every row reaches top_p: then the nucleus lies inside the top-k and the result is
    the same as with a full sort.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    vocab = probs.shape[-1]
    if top_p >= 1:
        probs, order = probs, None
    else:
        for k in (64, 1024, vocab):
            top, order = probs.topk(min(k, vocab), dim=-1)  # sorted, most likely first
            if k >= vocab or bool((top.sum(dim=-1) >= top_p).all()):
                break
        probs = top.masked_fill(top.cumsum(dim=-1) - top >= top_p, 0.0)
    cdf = probs.cumsum(dim=-1)
    target = (draws.to(cdf.dtype) * cdf[:, -1])[:, None]
    picked = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)  # (B, 1)
    return (order.gather(-1, picked) if order is not None else picked).squeeze(-1)


class GrowingLayer(_DynamicLayer):
    """A KV-cache layer in a buffer with spare room, so a decode step writes in place.

    `DynamicLayer` concatenates on every step, copying the whole cache (about 13% of a decode step
    at batch 16 on CPU). Here the buffer keeps half its size in spare room; `keys`/`values` are
    views of its used part. When the batch code replaces them (merging, retiring or trimming rows),
    the next update adopts the new tensors into a fresh buffer.
    """

    def __init__(self) -> None:
        super().__init__()
        self._buffers: tuple[Any, Any] | None = None
        self._view: Any = None
        self._length = 0

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        adopted = self._buffers is not None and self.keys is self._view  # not replaced since our update
        length = self._length if adopted else self.keys.shape[-2] if self.keys.numel() else 0
        new = key_states.shape[-2]
        if not adopted or length + new > self._buffers[0].shape[-2]:
            capacity = length + new + max(64, (length + new) // 2)  # room for many steps, not 2x memory
            buffers = []
            for old, fresh in ((self.keys, key_states), (self.values, value_states)):
                shape = (*fresh.shape[:-2], capacity, fresh.shape[-1])
                buf = torch.empty(shape, dtype=fresh.dtype, device=fresh.device)
                if length:
                    buf[..., :length, :] = old[..., :length, :]
                buffers.append(buf)
            self._buffers = (buffers[0], buffers[1])
        keys, values = self._buffers
        keys[..., length : length + new, :] = key_states
        values[..., length : length + new, :] = value_states
        self._length = length + new
        self.keys, self.values = keys[..., : self._length, :], values[..., : self._length, :]
        self._view = self.keys
        return self.keys, self.values
