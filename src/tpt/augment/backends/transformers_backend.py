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
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tpt.augment.backends.base import OPTION_DEFAULTS as D
from tpt.augment.backends.base import GenerationRequest, GenerationResult, SamplingParams
from tpt.augment.chat import prepare_prompt, wants_open_think
from tpt.augment.truncation import truncate_texts
from tpt.core.errors import BackendError, ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from tpt.augment.backends.refill import Row, RowWatch

# The registry imports this module only when the backend is chosen: torch stays out of `import tpt`.
try:
    import torch
except ImportError:  # pragma: no cover - depends on the install
    torch = None  # type: ignore[assignment]

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
    from tpt.core.hfmodel import EMBEDDED_NAME, is_embedded, load_causal_lm

    engine = _engine_args(options.get("engine_args") or {})
    batch_size = int(D.get(options, "batch_size"))
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    open_think = D.get(options, "open_think")
    if open_think not in ("auto", "on", "off"):
        raise ConfigError(f"--open-think must be auto, on or off, got {open_think!r}")
    device = _resolve_device(D.get(options, "device"))
    if "threads" in engine:
        torch.set_num_threads(engine["threads"])
    model_arg = options.get("model")
    lm, tok, _path = load_causal_lm(model_arg, dtype=D.get(options, "dtype"), device=device)
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


def _engine_args(raw: Mapping[str, object]) -> dict[str, int]:
    unknown = sorted(set(raw) - set(ENGINE_ARGS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in ENGINE_ARGS.items())
        raise ConfigError(f"unknown --engine-arg {', '.join(unknown)} for the transformers backend ({known})")
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
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
    return device


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
        self.max_model_len = max_model_len or getattr(model.config, "max_position_embeddings", None) or 2048
        self.open_think = wants_open_think(tokenizer, open_think)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.seeds = random.Random(seed)  # seeds for requests that bring none
        # transformers 5.x renamed `past_key_values` to `cache`; accept either.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.watch: RowWatch | None = None
        """Called on each row after each token (refill.RowWatch): a string ends the row there."""

    # -- the Backend contract --------------------------------------------------------------------

    def truncate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
        """Cut each text to max_tokens teacher tokens; the kept text is a prefix of the input."""
        return truncate_texts(self.tok, texts, max_tokens)

    def generate(
        self, requests: Iterable[GenerationRequest], sampling: SamplingParams
    ) -> Iterator[GenerationResult]:
        """Yield one result per request as rows finish; requests are pulled lookahead at a time."""
        from tpt.augment.backends.refill import Batch, Decoder, Lookahead

        decoder = Decoder(
            model=self.model,
            tokenizer=self.tok,
            cache_kw=self._cache_kw,
            pad_id=self.pad_id,
            eos_ids=self.eos_ids,
            max_prefill_tokens=self.max_prefill_tokens,
        )
        source = Lookahead(iter(requests), self._prepare_row(sampling), self.lookahead)
        batch = Batch(decoder, sampling, watch=self.watch)
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
        from tpt.augment.backends.refill import Row

        def prepare(request: GenerationRequest) -> Row | GenerationResult:
            prepared = prepare_prompt(
                self.tok, request, self.open_think, request.token_cap(sampling), self.max_model_len
            )
            if isinstance(prepared, GenerationResult):
                return prepared
            ids, prefilled, budget = prepared
            seed = request.seed if request.seed is not None else self.seeds.getrandbits(31)
            return Row(
                request=request,
                prompt_ids=ids,
                prefilled_think=prefilled,
                budget=budget,
                rng=random.Random(seed),
                guard=sampling.loop_guard.guard(),
            )

        return prepare


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    if not ids:
        raise ConfigError("the teacher has no end-of-sequence token (generation_config.eos_token_id)")
    return frozenset(ids)
