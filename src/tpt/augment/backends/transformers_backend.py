"""In-process Hugging Face generation for `tpt augment`: batches that refill rows as they finish.

Why a decode loop of our own rather than `model.generate`: `generate` runs a batch until its longest
row ends, so with thinking lengths that vary from tens to thousands of tokens most of the batch
idles (and continuous batching, `generate_batch`, ran 5x slower than plain `generate` on this CPU:
paged attention has no fast CPU kernel). Here a row that stops leaves the batch at once and, when
enough slots are free, new prompts are prefilled and merged into the running KV cache with left
padding (rotary positions are applied before caching, so rows with different amounts of padding
coexist as long as each row carries its own position ids and padding is masked).

Sampling: temperature and nucleus (top-p) over the full vocabulary, drawn per row by inverse CDF
from the row's own `random.Random(seed)`. Each row's random stream therefore depends only on its
seed, not on which rows share its batch. Reproducibility: the same requests with the same seeds,
batch size and look-ahead give identical outputs on the same machine; across different batch
compositions the draws are the same but bf16 logits can differ in the last bits, which can flip a
near-tie and make a trajectory diverge from that point on. Temperature 0 is greedy.
"""

from __future__ import annotations

import inspect
import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from tpt.augment.backend import GenerationRequest, GenerationResult, SamplingParams
from tpt.augment.truncation import truncate_texts
from tpt.errors import BackendError, ConfigError, MissingDependencyError

# The registry imports this module only when the backend is chosen: torch stays out of `import tpt`.
try:
    import torch
except ImportError:  # pragma: no cover - depends on the install
    torch = None  # type: ignore[assignment]

THINK_OPEN = "<think>\n"

# --engine-arg KEY=VALUE settings this backend understands (values arrive as strings from the CLI).
ENGINE_ARGS: dict[str, str] = {
    "lookahead": "requests pulled and sorted by prompt length at a time (default 4 x batch size)",
    "refill_at": "free rows that trigger prefilling new prompts (default batch size / 4)",
    "max_prefill_tokens": "padded prompt tokens per prefill pass (2048 on CPU, 16384 on GPU)",
    "max_model_len": "context length: prompt + thinking (default: the model config's)",
    "threads": "torch CPU threads (default: torch's choice, one per core)",
}
MAX_CONSECUTIVE_FAILURES = 3


def build(options: dict[str, Any]) -> TransformersBackend:
    """Load the teacher named by the `tpt augment` options and wrap it in a backend."""
    if torch is None:
        raise MissingDependencyError("torch", "the transformers backend", "hf")
    from tpt.hfmodel import EMBEDDED_NAME, is_embedded, load_causal_lm

    engine = _engine_args(options.get("engine_args") or {})
    batch_size = int(options.get("batch_size") or 16)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    open_think = options.get("open_think") or "auto"
    if open_think not in ("auto", "on", "off"):
        raise ConfigError(f"--open-think must be auto, on or off, got {open_think!r}")
    device = _resolve_device(options.get("device") or "auto")
    if "threads" in engine:
        torch.set_num_threads(engine["threads"])
    model_arg = options.get("model")
    lm, tok, _path = load_causal_lm(
        model_arg, dtype=options.get("dtype") or "bfloat16", device=device
    )
    model_id = EMBEDDED_NAME if is_embedded(model_arg) else str(model_arg)
    return TransformersBackend(
        lm,
        tok,
        model_id=model_id,
        batch_size=batch_size,
        open_think=open_think,
        seed=options.get("seed"),
        lookahead=engine.get("lookahead", 4 * batch_size),
        refill_at=engine.get("refill_at", max(1, batch_size // 4)),
        max_prefill_tokens=engine.get("max_prefill_tokens"),
        max_model_len=engine.get("max_model_len"),
    )


def _engine_args(raw: dict[str, Any]) -> dict[str, int]:
    unknown = sorted(set(raw) - set(ENGINE_ARGS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in ENGINE_ARGS.items())
        raise ConfigError(
            f"unknown --engine-arg {', '.join(unknown)} for the transformers backend ({known})"
        )
    out = {}
    for key, value in raw.items():
        try:
            out[key] = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--engine-arg {key}={value!r}: expected an integer") from None
        if out[key] < 1:
            raise ConfigError(f"--engine-arg {key}={value!r}: must be >= 1")
    return out


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto"
        )
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
    return device


@dataclass(slots=True, eq=False)
class _Row:
    """One request in flight: its prompt, its sampling stream and what it has generated so far."""

    request: GenerationRequest
    prompt_ids: list[int]
    prefilled_think: bool
    budget: int
    """Most tokens this row may generate: max_tokens, or less where the context ends first."""
    rng: random.Random
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None


class TransformersBackend:
    """Batched generation with a Hugging Face causal LM held in this process."""

    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str,
        batch_size: int = 16,
        open_think: str = "auto",
        seed: int | None = None,
        lookahead: int | None = None,
        refill_at: int | None = None,
        max_prefill_tokens: int | None = None,
        max_model_len: int | None = None,
    ) -> None:
        self.model, self.tok, self.model_id = model, tokenizer, model_id
        self.batch_size = batch_size
        self.lookahead = max(lookahead or 4 * batch_size, batch_size)
        self.refill_at = min(max(1, refill_at or batch_size // 4), batch_size)
        # On CPU a prompt alone is prefilled as fast per token as in a group (the matmuls are
        # already tall) and skips the padding; a GPU wants big groups.
        on_cpu = next(model.parameters()).device.type == "cpu"
        self.max_prefill_tokens = max_prefill_tokens or (2048 if on_cpu else 16384)
        self.max_model_len = (
            max_model_len or getattr(model.config, "max_position_embeddings", None) or 2048
        )
        self.open_think = wants_open_think(tokenizer, open_think)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        )
        self.seeds = random.Random(seed)  # seeds for requests that bring none
        # transformers 5.x renamed `past_key_values` to `cache`; accept either.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    # -- the Backend contract --------------------------------------------------------------------

    def truncate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
        """Cut each text to max_tokens teacher tokens; the kept text is a prefix of the input."""
        return truncate_texts(self.tok, texts, max_tokens)

    def generate(
        self, requests: Iterable[GenerationRequest], sampling: SamplingParams
    ) -> Iterator[GenerationResult]:
        """Yield one result per request as rows finish; requests are pulled lookahead at a time."""
        source = _Lookahead(iter(requests), self._prepare_row(sampling), self.lookahead)
        batch = _Batch(self, sampling)
        failures = 0
        try:
            while True:
                free = self.batch_size - len(batch.rows)
                if free >= self.refill_at or not batch.rows:
                    rows, errors = source.take(free if batch.can_merge or not batch.rows else 0)
                    yield from errors
                    if rows:
                        yield from batch.admit(rows)
                if not batch.rows:
                    if source.exhausted and not source.ready:
                        return
                    continue
                try:
                    yield from batch.step()
                    failures = 0
                # An OOM or kernel error hits the whole batch: its rows fail, the next one goes on.
                except (RuntimeError, ValueError) as exc:
                    failures += 1
                    if failures >= MAX_CONSECUTIVE_FAILURES:
                        raise BackendError(
                            f"the transformers backend failed {failures} times in a row: {exc}"
                        ) from exc
                    yield from batch.fail_all(f"decoding failed: {exc}")
        finally:
            batch.clear()

    def close(self) -> None:
        self.model = None  # let the weights go; a closed backend is not used again

    # -- helpers ---------------------------------------------------------------------------------

    def _prepare_row(self, sampling: SamplingParams):
        def prepare(request: GenerationRequest) -> _Row | GenerationResult:
            prepared = prepare_prompt(
                self.tok, request, self.open_think, sampling.max_tokens, self.max_model_len
            )
            if isinstance(prepared, GenerationResult):
                return prepared
            ids, prefilled, budget = prepared
            seed = request.seed if request.seed is not None else self.seeds.getrandbits(31)
            return _Row(
                request=request,
                prompt_ids=ids,
                prefilled_think=prefilled,
                budget=budget,
                rng=random.Random(seed),
            )

        return prepare

    def _result(self, row: _Row, stops: tuple[str, ...]) -> GenerationResult:
        ids = row.generated
        if ids and ids[-1] in self.eos_ids:
            ids = ids[:-1]
        text = self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
        if cuts:
            text = text[: min(cuts)]
        return GenerationResult(
            key=row.request.key,
            text=text,
            prefilled_think=row.prefilled_think,
            finish_reason=row.finish_reason or "length",
            prompt_tokens=len(row.prompt_ids),
            completion_tokens=len(row.generated),
        )


def wants_open_think(tokenizer: Any, open_think: str) -> bool:
    """Resolve --open-think: auto opens the turn when the chat template has no `<think>`."""
    if open_think != "auto":
        return open_think == "on"
    template = tokenizer.chat_template
    if template is None:
        raise ConfigError(
            "the teacher's tokenizer has no chat template; tpt sends the prompt through it, so use "
            "an instruct or reasoning model"
        )
    text = template if isinstance(template, str) else " ".join(map(str, dict(template).values()))
    return (
        "<think>" not in text
    )  # a reasoning model's template knows the tag and opens the turn itself


def prepare_prompt(
    tok: Any, request: GenerationRequest, open_think: bool, max_tokens: int, max_model_len: int
) -> tuple[list[int], bool, int] | GenerationResult:
    """(prompt ids, opened with <think>?, thinking budget), or the error result of this request alone.

    The budget is capped where the context ends, so a long document gets a "length" result rather than
    a request the engine refuses; shared by the transformers and vllm backends."""
    try:
        prompt, prefilled = render_prompt(tok, request.messages, open_think)
    except Exception as exc:  # a malformed message list fails this request only
        return GenerationResult(key=request.key, error=f"chat template failed: {exc}")
    ids = tok.encode(prompt, add_special_tokens=False)
    budget = min(max_tokens, max_model_len - len(ids))
    if budget < 1:
        return GenerationResult(
            key=request.key,
            prompt_tokens=len(ids),
            error=f"prompt has {len(ids)} tokens; the model context is {max_model_len}",
        )
    return ids, prefilled, budget


def render_prompt(
    tokenizer: Any, messages: Iterable[dict[str, str]], open_think: bool
) -> tuple[str, bool]:
    """The chat-templated prompt, opened with `<think>` when asked; and whether it ends opened.

    A reasoning model's template may open the thinking itself (generation prompt ending in
    `<think>`); that counts as opened too, since the completion then holds the thinking without its
    opening tag.
    """
    prompt = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=True
    )
    if open_think and not prompt.rstrip().endswith("<think>"):
        prompt += THINK_OPEN
    return prompt, prompt.rstrip().endswith("<think>")


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    if not ids:
        raise ConfigError(
            "the teacher has no end-of-sequence token (generation_config.eos_token_id)"
        )
    return frozenset(ids)


class _Lookahead:
    """Pulls requests `size` at a time, prepares them and hands them out shortest prompt first."""

    def __init__(self, source: Iterator[GenerationRequest], prepare: Any, size: int) -> None:
        self.source, self.prepare, self.size = source, prepare, size
        self.ready: deque[_Row] = deque()
        self.exhausted = False

    def take(self, n: int) -> tuple[list[_Row], list[GenerationResult]]:
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


class _Batch:
    """The running batch: rows, their left-padded KV cache, mask, positions and next tokens."""

    def __init__(self, backend: TransformersBackend, sampling: SamplingParams) -> None:
        self.b, self.sampling = backend, sampling
        self.stops = tuple(s for s in sampling.stop if s)
        # Tokens to re-decode each step to spot a stop string: every token is at least one
        # character.
        self.stop_window = max((len(s) for s in self.stops), default=0) + 2
        self.device = next(backend.model.parameters()).device
        self.rows: list[_Row] = []
        self.cache: Any = None
        self.mask: Any = None  # (B, L) bool: real token or padding
        self.next_pos: Any = None  # (B,) position of the token fed next
        self.next_tok: Any = None  # (B,) the token fed next (sampled, not yet in the cache)
        self.can_merge = (
            True  # False for caches we cannot left-pad (sliding-window or linear layers)
        )

    def clear(self) -> None:
        self.rows, self.cache, self.mask, self.next_pos, self.next_tok = [], None, None, None, None

    def admit(self, rows: list[_Row]) -> Iterator[GenerationResult]:
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
            out = self.b.model(
                input_ids=self.next_tok[:, None],
                attention_mask=mask,
                position_ids=self.next_pos[:, None],
                use_cache=True,
                **{self.b._cache_kw: self.cache},
            )
        self.mask, self.next_pos = mask, self.next_pos + 1
        yield from self._advance(self._sample(out.logits[:, -1, :]))

    def fail_all(self, reason: str) -> Iterator[GenerationResult]:
        rows = self.rows
        self.clear()
        for row in rows:
            yield GenerationResult(
                key=row.request.key, prompt_tokens=len(row.prompt_ids), error=reason
            )

    # -- internals -------------------------------------------------------------------------------

    def _groups(self, rows: list[_Row]) -> Iterator[list[_Row]]:
        # rows arrive sorted by length; cut them where the padded size (rows x longest) would pass
        # the cap
        group: list[_Row] = []
        for row in rows:
            longest = max([len(r.prompt_ids) for r in group] + [len(row.prompt_ids)])
            if group and (len(group) + 1) * longest > self.b.max_prefill_tokens:
                yield group
                group = []
            group.append(row)
        if group:
            yield group

    def _prefill(self, rows: list[_Row]) -> tuple[Any, Any, Any, Any]:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        longest = max(len(r.prompt_ids) for r in rows)
        ids = torch.full((len(rows), longest), self.b.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.bool)
        for i, row in enumerate(
            rows
        ):  # left padding: ids [p p a b c] mask [0 0 1 1 1] positions [0 0 0 1 2]
            ids[i, longest - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            mask[i, longest - len(row.prompt_ids) :] = True
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.b.model.config)
        if all(type(layer) is DynamicLayer for layer in cache.layers):
            cache.layers = [_GrowingLayer() for _ in cache.layers]
        with torch.inference_mode():
            out = self.b.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,  # only the last position's logits: (k, 1, V), not (k, P, V)
                **{self.b._cache_kw: cache},
            )
        first = self._sample(out.logits[:, -1, :], rows)
        return cache, mask, positions[:, -1] + 1, first

    def _merge(self, rows: list[_Row], cache: Any, mask: Any, next_pos: Any, first: Any) -> None:
        if self.cache is None:
            self.rows, self.cache, self.mask, self.next_pos, self.next_tok = (
                rows,
                cache,
                mask,
                next_pos,
                first,
            )
            self.can_merge = all(type(layer) is _GrowingLayer for layer in cache.layers)
            return
        # Left-pad the shorter side so both caches end at the same column, then stack along the
        # batch: running (L=5) [. a b c d] + new (P=3) [x y z] -> [. a b c d] / [. . x y z]
        length, new_length = self.mask.shape[1], mask.shape[1]
        width = max(length, new_length)
        for old_layer, new_layer in zip(self.cache.layers, cache.layers, strict=True):
            for name in ("keys", "values"):
                old = _left_pad(getattr(old_layer, name), width - length, dim=2)
                new = _left_pad(getattr(new_layer, name), width - new_length, dim=2)
                setattr(old_layer, name, torch.cat([old, new], dim=0))
        self.mask = torch.cat(
            [
                _left_pad(self.mask, width - length, dim=1),
                _left_pad(mask, width - new_length, dim=1),
            ]
        )
        self.next_pos = torch.cat([self.next_pos, next_pos])
        self.next_tok = torch.cat([self.next_tok, first])
        self.rows = self.rows + rows

    def _sample(self, logits: Any, rows: list[_Row] | None = None) -> Any:
        rows = self.rows if rows is None else rows
        draws = torch.tensor(
            [row.rng.random() for row in rows], dtype=torch.float32, device=logits.device
        )
        return sample_tokens(logits, self.sampling.temperature, self.sampling.top_p, draws)

    def _advance(self, tokens: Any, offset: int = 0) -> Iterator[GenerationResult]:
        """Append tokens to rows offset..; retire rows done at EOS, a stop string or budget."""
        rows = self.rows[offset:]
        for row, token in zip(rows, tokens.tolist(), strict=True):
            row.generated.append(token)
            if token in self.b.eos_ids:
                row.finish_reason = "stop"
        if self.stops:
            tails = self.b.tok.batch_decode(
                [row.generated[-self.stop_window :] for row in rows], skip_special_tokens=True
            )
            for row, tail in zip(rows, tails, strict=True):
                if row.finish_reason is None and any(s in tail for s in self.stops):
                    row.finish_reason = "stop"
        self.next_tok[offset:] = tokens
        done = [
            offset + i
            for i, row in enumerate(rows)
            if row.finish_reason or len(row.generated) >= row.budget
        ]
        if done:
            finished = [self.rows[i] for i in done]
            self._retire(done)
            for row in finished:
                yield self.b._result(row, self.stops)

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
        start = int(self.mask.any(dim=0).to(torch.uint8).argmax())
        if start > 0 and self.can_merge:
            self.mask = self.mask[:, start:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]


def _left_pad(tensor: Any, amount: int, *, dim: int) -> Any:
    if amount == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = amount
    return torch.cat(
        [torch.zeros(shape, dtype=tensor.dtype, device=tensor.device), tensor], dim=dim
    )


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


if torch is not None:
    from transformers.cache_utils import DynamicLayer as _DynamicLayer
else:  # pragma: no cover
    _DynamicLayer = object  # type: ignore[assignment,misc]


class _GrowingLayer(_DynamicLayer):
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

    def update(
        self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any
    ) -> tuple[Any, Any]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        adopted = (
            self._buffers is not None and self.keys is self._view
        )  # not replaced since our update
        length = self._length if adopted else self.keys.shape[-2] if self.keys.numel() else 0
        new = key_states.shape[-2]
        if not adopted or length + new > self._buffers[0].shape[-2]:
            capacity = (
                length + new + max(64, (length + new) // 2)
            )  # room for many steps, not 2x memory
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
