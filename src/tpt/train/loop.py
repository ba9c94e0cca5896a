"""The training loop: token-weighted causal LM loss over micro-batches, logged by token kind, with
non-finite steps skipped and counted, and checkpoints at the planned steps.

Loss normalization: each step's loss is the sum of per-token losses over the whole global batch
divided by its number of target tokens, whatever the split into ranks and micro-batches; so 1 process
and N processes with the same global batch compute the same loss (and the same gradients, up to float
summation order).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from tpt.core.errors import TptError
from tpt.formats.packfile import NUM_KINDS
from tpt.train.config import LoopConfig
from tpt.train.data import IGNORE_INDEX, RowBatch, RowOrder, RowSource
from tpt.train.dist import DistContext, all_reduce_sum
from tpt.train.metrics import MetricsLog, MetricsRecord
from tpt.train.optim import lr_at, set_lr


class DivergedError(TptError):
    """Too many consecutive steps had a non-finite loss or gradient."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LoopState:
    """Where training stands: optimizer steps done and steps skipped as non-finite so far."""

    step: int = 0
    skipped_steps: int = 0


def default_micro_batch(rows_per_rank: int, seq_len: int, max_tokens: int = 8192) -> int:
    """The largest divisor of rows_per_rank whose micro-batch holds at most max_tokens (at least 1)."""
    best = 1
    for d in range(1, rows_per_rank + 1):
        if rows_per_rank % d == 0 and d * seq_len <= max_tokens:
            best = d
    return best


@dataclass(frozen=True, kw_only=True, slots=True)
class SavePoint:
    """Where the loop stands at a planned checkpoint: what `save` writes into tpt_checkpoint.json."""

    step: int
    tokens_seen: int
    rows_consumed: int
    epoch: float
    skipped_steps: int
    loss: float
    """The last logged loss (nan before any)."""
    lr: float


def train(
    *,
    model: Any,
    optimizer: Any,
    source: RowSource,
    order: RowOrder,
    cfg: LoopConfig,
    ctx: DistContext,
    start: LoopState,
    metrics: MetricsLog,
    save: Callable[[SavePoint], None],
    fsdp: bool = False,
) -> LoopState:
    """Train from `start` to the budget's last step; calls `save(point)` at every planned checkpoint."""
    import torch

    total_steps, rows_per_step = cfg.total_steps, cfg.rows_per_step
    rows_per_rank = rows_per_step // ctx.world_size
    micro = cfg.micro_batch_rows or default_micro_batch(rows_per_rank, cfg.seq_len)
    save_steps = set(cfg.save_steps())
    params = [p for p in model.parameters() if p.requires_grad]
    forward = _MicroBatches(model, ctx, cfg, fsdp)

    # Window accumulators for logging: [0] summed token losses per target kind, [1] target counts.
    window = torch.zeros(2, NUM_KINDS, dtype=torch.float64)
    window_steps, window_t0 = 0, time.perf_counter()
    step, skipped, bad_streak = start.step, start.skipped_steps, 0
    loss = float("nan")
    model.train()
    while step < total_steps:
        lr = lr_at(step, cfg.optim, total_steps)
        set_lr(optimizer, lr)
        rows = order.rows(step * rows_per_step, rows_per_step)
        rows = rows[ctx.rank * rows_per_rank : (ctx.rank + 1) * rows_per_rank]
        batches = [source.batch(rows[i : i + micro]) for i in range(0, rows_per_rank, micro)]
        sums, counts = forward.backward(batches)

        grad_norm = _clipped_grad_norm(params, cfg)
        if np.isfinite(grad_norm):
            optimizer.step()
            bad_streak = 0
            window[0] += sums.cpu()
            window[1] += counts
        else:  # a NaN/inf step changes nothing: gradients are dropped, the data counts as seen
            skipped += 1
            bad_streak += 1
            if bad_streak > cfg.max_bad_steps:
                raise DivergedError(
                    f"{bad_streak} consecutive steps had a non-finite loss or gradient (step {step + 1}); "
                    "lower --lr, use QK-norm (--qk-norm) or --precision fp32, and resume from a checkpoint"
                )
        optimizer.zero_grad(set_to_none=True)
        step += 1
        window_steps += 1

        if step % cfg.log_every_steps == 0 or step in save_steps or step == total_steps:
            all_reduce_sum(window[0], ctx)  # counts were already global; sums are per rank
            now = time.perf_counter()
            record = _record(
                window,
                source.kind_names,
                step=step,
                cfg=cfg,
                lr=lr,
                grad_norm=grad_norm,
                skipped=skipped,
                tokens_per_second=window_steps * cfg.batch_tokens / max(now - window_t0, 1e-9),
                epoch=step * rows_per_step / source.num_rows,
            )
            loss = float(record["loss"]) if record["loss"] is not None else loss
            metrics.write(record)
            window.zero_()
            window_steps = 0
            if step in save_steps:
                epoch = step * rows_per_step / source.num_rows
                save(_save_point(step, cfg, rows_per_step, epoch=epoch, skipped=skipped, loss=loss, lr=lr))
                now = time.perf_counter()  # checkpoint writing is not training time
            window_t0 = now
    return LoopState(step=step, skipped_steps=skipped)


def _save_point(
    step: int, cfg: LoopConfig, rows_per_step: int, *, epoch: float, skipped: int, loss: float, lr: float
) -> SavePoint:
    return SavePoint(
        step=step,
        tokens_seen=step * cfg.batch_tokens,
        rows_consumed=step * rows_per_step,
        epoch=round(epoch, 6),
        skipped_steps=skipped,
        loss=loss,
        lr=lr,
    )


class _MicroBatches:
    """One step's forward and backward passes over its micro-batches, with gradients accumulated."""

    def __init__(self, model: Any, ctx: DistContext, cfg: LoopConfig, fsdp: bool) -> None:
        import torch

        self.model, self.ctx, self.fsdp = model, ctx, fsdp
        self.device = torch.device(ctx.device)
        # Under FSDP, bf16 comes from its mixed-precision policy (bf16 parameter copies), not autocast.
        use_autocast = cfg.precision == "bf16" and not fsdp
        self.autocast = torch.autocast(ctx.device_type, dtype=torch.bfloat16, enabled=use_autocast)

    def backward(self, batches: list[RowBatch]) -> tuple[Any, Any]:
        """Backpropagate the step's loss; returns (summed token losses per kind on the device, the global
        batch's target counts per kind)."""
        import torch
        import torch.nn.functional as F

        ctx, device = self.ctx, self.device
        counts = torch.from_numpy(sum(_kind_counts(b) for b in batches))  # (NUM_KINDS,) this rank
        counts = all_reduce_sum(counts, ctx)  # the whole global batch
        denom = max(float(counts.sum()), 1.0)
        # Kept on the device, so micro-batches do not wait for the host.
        sums = torch.zeros(NUM_KINDS, dtype=torch.float64, device=device)
        for i, b in enumerate(batches):
            last = i == len(batches) - 1
            with _grad_sync(self.model, ctx, self.fsdp, enabled=last):
                ids = torch.from_numpy(b.input_ids).to(device)  # (B, T)
                targets = torch.from_numpy(b.targets).to(device)  # (B, T)
                pos = b.position_ids
                pos = None if pos is None else torch.from_numpy(pos).to(device)  # (B, T)
                # use_cache=False also matters for packing: with a cache, transformers ignores
                # restarting position ids and attends across samples.
                with self.autocast:
                    logits = self.model(input_ids=ids, position_ids=pos, use_cache=False).logits
                # logits: (B, T, V)
                token_loss = F.cross_entropy(
                    logits.flatten(0, 1).float(),
                    targets.flatten(),
                    ignore_index=IGNORE_INDEX,
                    reduction="none",
                )  # (B*T,), 0 where ignored
                # DDP and FSDP average gradients over ranks; x world_size turns that into the global sum.
                (token_loss.sum() * (ctx.world_size / denom)).backward()
                kinds = torch.from_numpy(b.target_kinds).flatten().to(device)
                sums.index_add_(0, kinds, token_loss.detach().double())
        return sums, counts


def _clipped_grad_norm(params: list[Any], cfg: LoopConfig) -> float:
    """Clip the gradients to cfg.optim.grad_clip (if set); the global norm before clipping."""
    import torch

    norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip or float("inf"))
    # FSDP2 returns a DTensor norm; its full value is the global norm.
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
    return float(norm)


def _kind_counts(b: RowBatch) -> np.ndarray:
    """Target tokens per kind in a micro-batch, as float64 (ready to sum over ranks)."""
    kinds = b.target_kinds[b.targets != IGNORE_INDEX]
    return np.bincount(kinds.ravel(), minlength=NUM_KINDS).astype(np.float64)


def _grad_sync(model: Any, ctx: DistContext, fsdp: bool, *, enabled: bool) -> Any:
    """Skip the gradient all-reduce on all but the last micro-batch of a step (gradient accumulation)."""
    if fsdp:
        model.set_requires_gradient_sync(enabled)
        return nullcontext()
    if ctx.distributed and not enabled:
        return model.no_sync()
    return nullcontext()


def _record(
    window: Any,
    kind_names: dict[int, str],
    *,
    step: int,
    cfg: LoopConfig,
    lr: float,
    grad_norm: float,
    skipped: int,
    tokens_per_second: float,
    epoch: float,
) -> MetricsRecord:
    """One metrics.jsonl line: losses are token-weighted means over the steps since the last line."""
    sums, counts = window[0].tolist(), window[1].tolist()
    total = sum(counts)
    record: MetricsRecord = {
        "step": step,
        "tokens": step * cfg.batch_tokens,
        "epoch": round(epoch, 6),
        "loss": sum(sums) / total if total else None,  # None: every step of the window was skipped
        "lr": lr,
        "grad_norm": grad_norm if np.isfinite(grad_norm) else None,  # keep the line valid JSON
        "tokens_per_second": round(tokens_per_second, 1),
        "tokens_per_step": cfg.batch_tokens,
        "target_tokens": int(total),
        "skipped_steps": skipped,
    }
    for kind, name in kind_names.items():
        record[f"loss_{name}"] = sums[kind] / counts[kind] if counts[kind] else None
        record[f"tokens_{name}"] = int(counts[kind])
    return record
