"""Assemble a run of `tpt train` or `tpt sft`: threads, ranks, output dir, model, resume point, loop."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tpt.core.artifacts import canonical_json, claim_output_dir
from tpt.core.errors import ConfigError, TptError
from tpt.formats.summaries import TrainSummary
from tpt.storage.outputlock import lock_output_dir
from tpt.train import checkpoint, dist
from tpt.train.config import LoopConfig
from tpt.train.data import RowOrder, RowSource
from tpt.train.loop import LoopState, SavePoint, default_micro_batch, train
from tpt.train.metrics import MetricsLog


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSpec:
    """Everything a run needs besides its data and model: where, how, and what to record."""

    stage: str  # "train" or "sft"
    run_dir: Path
    cfg: LoopConfig
    fingerprinted: Mapping[str, object]
    """Settings that change the outputs; a resumed run must match them."""
    recorded: Mapping[str, object]
    """Everything else worth keeping in manifest.json."""
    threads: int | None = None
    device: str = "auto"
    fsdp: bool = False
    tensorboard: bool = False
    wandb: bool = False
    overwrite_config: bool = False
    checkpoint_info: Mapping[str, object] | None = None
    """More facts for every checkpoint's tpt_checkpoint.json (train: the data's BOS convention)."""


def run_session(
    spec: RunSpec,
    *,
    source: RowSource,
    tokenizer: Any,
    new_model: Callable[[], Any],
    resume_model: Callable[[Path], Any],
) -> TrainSummary:
    """Train to the budget, resuming from the run's last checkpoint if there is one."""
    import torch
    from transformers.utils import logging as hf_logging

    if spec.threads:
        torch.set_num_threads(spec.threads)
    hf_logging.disable_progress_bar()  # per-checkpoint "Writing model shards" bars drown the progress line
    ctx = dist.setup(spec.device)
    try:
        with ExitStack() as held:  # rank 0's lock of the run directory, for the whole run
            return _run(spec, ctx, source, tokenizer, new_model, resume_model, held)
    finally:
        dist.teardown(ctx)


def check_geometry(cfg: LoopConfig, world_size: int) -> int:
    """Rows per rank per step, after checking the global batch splits evenly; returns the micro-batch."""
    rows = cfg.rows_per_step
    if rows % world_size:
        raise ConfigError(
            f"--batch-tokens {cfg.batch_tokens} is {rows} rows of {cfg.seq_len}, which does not split over "
            f"{world_size} processes; use a multiple of {cfg.seq_len * world_size} tokens"
        )
    per_rank = rows // world_size
    micro = cfg.micro_batch_rows or default_micro_batch(per_rank, cfg.seq_len)
    if per_rank % micro:
        raise ConfigError(
            f"--micro-batch {micro} does not divide the {per_rank} rows each process gets per step"
        )
    return micro


def _run(
    spec: RunSpec,
    ctx: dist.DistContext,
    source: RowSource,
    tokenizer: Any,
    new_model: Callable[[], Any],
    resume_model: Callable[[Path], Any],
    held: ExitStack,
) -> TrainSummary:
    started = time.monotonic()
    cfg = spec.cfg
    micro = check_geometry(cfg, ctx.world_size)
    fingerprint = _claim(spec, ctx, micro, held)
    latest = checkpoint.latest_checkpoint(spec.run_dir)
    start = _resume_point(latest, cfg) if latest is not None else LoopState()
    if start.step >= cfg.total_steps:
        if ctx.is_main:
            print(
                f"tpt {spec.stage}: {spec.run_dir} already holds the final checkpoint "
                f"{latest.name}; nothing to do",
                file=sys.stderr,
            )
        return _summary(spec, start, latest, None, started)
    student = _Student.build(spec, ctx, latest, start, new_model, resume_model)
    _announce(spec, ctx, source, student)
    metrics = MetricsLog(
        spec.run_dir,
        resume_step=start.step,
        total_steps=cfg.total_steps,
        enabled=ctx.is_main,
        tensorboard=spec.tensorboard,
        wandb=spec.wandb,
        run_config=spec.recorded,
    )
    order = RowOrder(source.num_rows, seed=cfg.seed, shuffle=cfg.data_order == "shuffle")
    try:
        end = train(
            model=student.wrapped,
            optimizer=student.optimizer,
            source=source,
            order=order,
            cfg=cfg,
            ctx=ctx,
            start=start,
            metrics=metrics,
            save=_saver(spec, ctx, student, tokenizer, fingerprint),
            fsdp=spec.fsdp,
        )
    finally:
        metrics.close()
    final = checkpoint.latest_checkpoint(spec.run_dir)
    if ctx.is_main:
        seen = end.step * cfg.rows_per_step / source.num_rows
        print(
            f"tpt {spec.stage}: done, {end.step} steps ({seen:.2f} epochs over the packed data), "
            f"{end.skipped_steps} skipped as non-finite; final checkpoint {final}",
            file=sys.stderr,
        )
    return _summary(spec, end, final, latest, started)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Student:
    """The model on its device (wrapped for DDP/FSDP), its optimizer, and what it is."""

    wrapped: Any
    optimizer: Any
    sizes: dict[str, int]
    """count_parameters(model): parameters, non_embedding_parameters, ..."""
    arch: str

    @classmethod
    def build(
        cls,
        spec: RunSpec,
        ctx: dist.DistContext,
        latest: Path | None,
        start: LoopState,
        new_model: Callable[[], Any],
        resume_model: Callable[[Path], Any],
    ) -> _Student:
        """A new student (seeded), or the latest checkpoint's with its optimizer and RNG state."""
        import torch

        from tpt.train.model import count_parameters
        from tpt.train.optim import build_optimizer

        if latest is not None:
            model = resume_model(latest)
        else:
            torch.manual_seed(spec.cfg.seed)
            model = new_model()
        sizes = count_parameters(model)
        arch = type(model).__name__  # before wrapping: FSDP2 renames the class
        model.to(ctx.device)
        wrapped = dist.wrap(model, ctx, fsdp=spec.fsdp, bf16=spec.cfg.precision == "bf16")
        optimizer = build_optimizer(wrapped, spec.cfg.optim)
        if latest is not None:
            checkpoint.restore_trainer_state(latest, model=wrapped, optimizer=optimizer, fsdp=spec.fsdp)
            if ctx.is_main:
                print(
                    f"tpt {spec.stage}: resuming from {latest.name} (step {start.step})",
                    file=sys.stderr,
                )
        return cls(wrapped=wrapped, optimizer=optimizer, sizes=sizes, arch=arch)


def _announce(spec: RunSpec, ctx: dist.DistContext, source: RowSource, student: _Student) -> None:
    """Rank 0 says what it trains, on what, for how long (and warns when the data repeats)."""
    cfg, sizes = spec.cfg, student.sizes
    epochs = cfg.total_steps * cfg.rows_per_step / source.num_rows
    if ctx.is_main:
        print(
            f"tpt {spec.stage}: {student.arch}, {sizes['parameters']:,} parameters "
            f"({sizes['non_embedding_parameters']:,} non-embedding); {cfg.total_steps} steps of "
            f"{cfg.batch_tokens:,} tokens on {ctx.world_size} x {ctx.device}; "
            f"{epochs:.2f} epochs over the {source.num_rows * cfg.seq_len:,} data tokens",
            file=sys.stderr,
        )
        if spec.stage == "train" and epochs > 1:
            print(repeat_warning(cfg, source.num_rows, epochs), file=sys.stderr)


def _saver(
    spec: RunSpec, ctx: dist.DistContext, student: _Student, tokenizer: Any, fingerprint: str
) -> Callable[[SavePoint], None]:
    """What the loop calls at each planned checkpoint: the weights, the trainer state and
    tpt_checkpoint.json (the save point, the run's settings and sizes)."""
    from tpt import __version__

    cfg = spec.cfg

    def save(point: SavePoint) -> None:
        info = {
            "format": "tpt-checkpoint-v1",
            "stage": spec.stage,
            **(spec.checkpoint_info or {}),
            **asdict(point),
            "fingerprint": fingerprint,
            "world_size": ctx.world_size,
            "batch_tokens": cfg.batch_tokens,
            "seq_len": cfg.seq_len,
            **student.sizes,
            "tpt_version": __version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        checkpoint.save_checkpoint(
            spec.run_dir,
            model=student.wrapped,
            optimizer=student.optimizer,
            tokenizer=tokenizer,
            info=info,
            ctx=ctx,
            fsdp=spec.fsdp,
        )

    return save


def _summary(
    spec: RunSpec, state: LoopState, final: Path | None, resumed_from: Path | None, started: float
) -> TrainSummary:
    return TrainSummary(
        stage=spec.stage,
        run_dir=spec.run_dir,
        steps=state.step,
        total_steps=spec.cfg.total_steps,
        tokens_seen=state.step * spec.cfg.batch_tokens,
        skipped_steps=state.skipped_steps,
        final_checkpoint=final,
        resumed_from=resumed_from,
        wall_seconds=round(time.monotonic() - started, 3),
    )


def repeat_warning(cfg: LoopConfig, num_rows: int, epochs: float) -> str:
    """What `tpt train` says at start when its budget is larger than its data."""
    return (
        f"tpt train: warning: the budget of {cfg.total_steps * cfg.batch_tokens:,} tokens is "
        f"{epochs:.2f} epochs over the {num_rows * cfg.seq_len:,} tokens of packed data: every row is "
        f"trained on about {epochs:.1f} times. This is the data-constrained regime (the paper's "
        "abundant-data runs see each sample at most once); for that, pack as many unique tokens as the "
        "budget. metrics.jsonl records the epoch of every step"
    )


def _claim(spec: RunSpec, ctx: dist.DistContext, micro: int, held: ExitStack) -> str:
    """Bind the run directory to this config (rank 0 locks it and writes the manifest); returns the
    fingerprint.

    Only rank 0 takes the lock (one per job, however many ranks and hosts share the directory). The
    other ranks learn rank 0's verdict, so a config clash or a busy directory stops every rank. The
    fingerprinted settings go through JSON first, so a tuple equals the list read back from
    manifest.json when the changed settings are named.
    """
    verdict: Any = None
    if ctx.is_main:
        try:
            held.enter_context(lock_output_dir(spec.run_dir, stage=spec.stage))
            manifest = claim_output_dir(
                spec.run_dir,
                stage=spec.stage,
                config={**spec.recorded, "world_size": ctx.world_size, "micro_batch_rows": micro},
                fingerprinted=json.loads(canonical_json(spec.fingerprinted)),
                override=spec.overwrite_config,
            )
            verdict = manifest["fingerprint"]
        except TptError as exc:
            verdict = exc
    verdict = dist.broadcast_object(verdict, ctx)
    if isinstance(verdict, TptError):
        raise verdict
    return verdict


def _resume_point(latest: Path, cfg: LoopConfig) -> LoopState:
    info = checkpoint.read_checkpoint_info(latest)
    if info["rows_consumed"] != info["step"] * cfg.rows_per_step:
        raise ConfigError(f"{latest} was made with another batch size; resume it with its own --batch-tokens")
    return LoopState(step=int(info["step"]), skipped_steps=int(info.get("skipped_steps", 0)))


def config_record(cfg: LoopConfig) -> dict[str, object]:
    """The LoopConfig as plain JSON-able values."""
    return asdict(cfg)
