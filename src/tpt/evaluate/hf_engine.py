"""Batched generation with a Hugging Face causal LM: left padding, a KV cache, per-row stops, CPU or GPU.

Prompts are sorted by length and run in batches of `batch_size`. Each batch is prefilled once, then
decoded one token per step with the KV cache; a row that hits end-of-sequence, a stop string or
`max_new_tokens` leaves the batch (its cache rows are dropped), so finished rows cost nothing.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError
from tpt.evaluate.engine import Completion, GenParams, cut_at_stop
from tpt.evaluate.models import encode_prompts, prompt_bos


def resolve_dtype(model_dir: Path, dtype: str) -> str:
    """`auto`: the dtype in config.json when it is float32, bfloat16 or float16; else float32."""
    if dtype != "auto":
        return dtype
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "float32"
    found = config.get("dtype") or config.get("torch_dtype")
    return found if found in ("float32", "bfloat16", "float16") else "float32"


class HFEngine:
    """Greedy or sampled generation with `transformers` models, batched."""

    name = "hf"

    def __init__(
        self,
        model_dir: Path,
        *,
        dtype: str = "auto",
        device: str = "cpu",
        batch_size: int = 32,
        seed: int = 0,
    ):
        from tpt.core.hfmodel import load_causal_lm

        self.dtype = resolve_dtype(model_dir, dtype)
        self.model, self.tokenizer, self.path = load_causal_lm(model_dir, dtype=self.dtype, device=device)
        self.device = device
        self.batch_size = batch_size
        tok = self.tokenizer
        eos = set()
        for source in (
            getattr(self.model.generation_config, "eos_token_id", None),
            tok.eos_token_id,
        ):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, (list, tuple)):
                eos.update(int(t) for t in source)
        self.eos_ids = frozenset(eos)
        # Tokenizers without a pad token (common for small students): pad with eos, hidden by the mask.
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.pad_id = int(pad) if pad is not None else 0
        # transformers >= 5.2x names the KV cache `cache` (in and out); earlier, `past_key_values`.
        params = inspect.signature(self.model.forward).parameters
        self.cache_name = "cache" if "cache" in params else "past_key_values"
        self.bos = prompt_bos(self.path)
        """(known, bos_id): the BOS convention of a tpt checkpoint, else the tokenizer's default."""
        self.context = getattr(self.model.config, "max_position_embeddings", None)
        self.over_context = 0
        """Prompts of the last generate() whose tokens plus max_new_tokens pass `context`."""

    def close(self) -> None:
        self.model = None

    def encode(self, prompts: Sequence[str]) -> list[list[int]]:
        ids = encode_prompts(self.tokenizer, list(prompts), self.bos)
        for i, row in enumerate(ids):
            if not row:
                raise InputError(f"prompt {i} encodes to no tokens; check the task's prompt template")
        return ids

    def loglik(self, prompts: Sequence[str], targets: Sequence[str]) -> list[float]:
        """log p(target | prompt) in nats, summed over the target's tokens (encoded alone, no specials)."""
        import torch

        contexts = self.encode(prompts)
        conts = self.tokenizer(list(targets), add_special_tokens=False)["input_ids"]
        out: list[float] = [0.0] * len(contexts)
        order = sorted(range(len(contexts)), key=lambda i: -(len(contexts[i]) + len(conts[i])))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            rows = [contexts[i] + conts[i] for i in chunk]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, row in enumerate(rows):  # right padding: positions are the plain 0..n-1
                ids[j, : len(row)] = torch.tensor(row, dtype=torch.long)
                mask[j, : len(row)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
            for j, i in enumerate(chunk):
                n_ctx, n_cont = len(contexts[i]), len(conts[i])
                # The token at position t is predicted by the logits at t - 1.
                picked = [logprobs[j, t - 1, rows[j][t]].item() for t in range(n_ctx, n_ctx + n_cont)]
                out[i] = float(sum(picked))
        return out

    def generate(self, prompts: Sequence[str], params: GenParams) -> list[list[Completion]]:
        import torch

        encoded = self.encode(prompts)
        self.over_context = (
            sum(len(ids) + params.max_new_tokens > self.context for ids in encoded) if self.context else 0
        )
        # One work item per (prompt, sample); longest first so that each batch has similar lengths.
        items = [(p, s) for p in range(len(prompts)) for s in range(params.samples)]
        items.sort(key=lambda it: -len(encoded[it[0]]))
        results: list[list[Completion | None]] = [[None] * params.samples for _ in prompts]
        generator = None
        if params.temperature > 0:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(params.seed)
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            outs = self.generate_batch([encoded[p] for p, _ in chunk], params, generator)
            for (p, s), out in zip(chunk, outs, strict=True):
                results[p][s] = out
        return [[c for c in row if c is not None] for row in results]

    def generate_batch(
        self, rows: list[list[int]], params: GenParams, generator: Any = None
    ) -> list[Completion]:
        """Generate for one batch of token-id prompts."""
        import torch

        batch, width = len(rows), max(len(r) for r in rows)
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: every prompt ends at the last column
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        # Positions count real tokens only: mask [0 0 1 1 1] -> positions [0 0 0 1 2].
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        input_ids, mask, positions = (t.to(self.device) for t in (input_ids, mask, positions))
        window = max([64, *(4 * len(s) for s in params.stop)])
        generated: list[list[int]] = [[] for _ in rows]
        finish: list[str] = ["length"] * batch
        active = list(range(batch))  # batch row of each cache row
        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
            )
            past, logits = out[self.cache_name], out.logits[:, -1, :]  # logits: (A, vocab)
            next_pos = positions[:, -1] + 1  # (A,)
            for _ in range(params.max_new_tokens):
                token = self.pick(logits, params, generator)  # (A,)
                keep = []
                for j, (i, t) in enumerate(zip(active, token.tolist(), strict=True)):
                    if t in self.eos_ids:
                        finish[i] = "eos"
                        continue
                    generated[i].append(t)
                    if params.stop and self.hits_stop(generated[i][-window:], params.stop):
                        finish[i] = "stop"
                        continue
                    if len(generated[i]) < params.max_new_tokens:
                        keep.append(j)
                if not keep:
                    break
                if len(keep) < len(active):  # drop finished rows from the batch and the cache
                    idx = torch.tensor(keep, device=self.device)
                    past.reorder_cache(idx)
                    mask, next_pos, token = mask[idx], next_pos[idx], token[idx]
                    active = [active[j] for j in keep]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                out = self.model(
                    input_ids=token[:, None],
                    attention_mask=mask,
                    position_ids=next_pos[:, None],
                    use_cache=True,
                    **{self.cache_name: past},
                )
                past, logits = out[self.cache_name], out.logits[:, -1, :]
                next_pos = next_pos + 1
        completions = []
        for i in range(batch):
            text = self.tokenizer.decode(generated[i], skip_special_tokens=False)
            text, found = cut_at_stop(text, params.stop)
            reason = "stop" if found else finish[i]
            completions.append(Completion(text=text, num_tokens=len(generated[i]), finish_reason=reason))
        return completions

    def hits_stop(self, tail: list[int], stop: tuple[str, ...]) -> bool:
        text = self.tokenizer.decode(tail, skip_special_tokens=False)
        return any(s in text for s in stop)

    @staticmethod
    def pick(logits: Any, params: GenParams, generator: Any) -> Any:
        """Next token per row: argmax when greedy, else a top-p draw at the temperature."""
        import torch

        logits = logits.float()
        if params.temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            # keep the smallest prefix whose mass reaches top_p: cum [0.5 0.8 0.95 1] at 0.8 keeps 2
            drop = sorted_probs.cumsum(-1) - sorted_probs >= params.top_p
            sorted_probs = sorted_probs.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
