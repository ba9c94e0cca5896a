"""Process groups from the launcher's environment (torchrun or accelerate), DDP/FSDP wrapping, reductions.

Both launchers set RANK, LOCAL_RANK and WORLD_SIZE; without them this is one process. CPU ranks talk over
gloo, CUDA ranks over NCCL. FSDP (`fully_shard`, FSDP2) is for models that do not fit one GPU: its CPU/gloo
path is tested here with 2 processes; its CUDA/NCCL path is not (no GPU on the development machine).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tpt.core.errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int
    local_rank: int
    world_size: int
    device: str  # "cpu" or "cuda:N"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]


def setup(device: str = "auto") -> DistContext:
    """Read the launcher's environment, pick the device, and join the process group if there is one."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but torch sees no CUDA device")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    elif device != "cpu":
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank=rank, local_rank=local_rank, world_size=world, device=device)


def teardown(ctx: DistContext) -> None:
    import torch

    if ctx.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(model: Any, ctx: DistContext, *, fsdp: bool, bf16: bool) -> Any:
    """DDP when several processes train; FSDP2 (`fully_shard` per decoder layer, then the root) on request."""
    if fsdp:
        import torch
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        # Sharded parameters stay fp32 (the optimizer's master copy); gathered copies compute in bf16
        # (the loop then skips autocast, as torchtitan does) and gradients are reduced in fp32.
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32)
        for layer in model.model.layers:
            fully_shard(layer, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        return model
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)
    return model


def unwrap(model: Any) -> Any:
    """The Hugging Face model inside a DDP wrapper (FSDP2 shards in place, so it is the model itself)."""
    return getattr(model, "module", model)


def all_reduce_sum(tensor: Any, ctx: DistContext) -> Any:
    """Sum a (host) tensor over ranks in place (no-op for one process).

    NCCL reduces only CUDA tensors, so under it the values travel through the device.
    """
    if ctx.distributed:
        import torch

        if ctx.device_type == "cuda":
            on_device = tensor.to(ctx.device)
            torch.distributed.all_reduce(on_device, op=torch.distributed.ReduceOp.SUM)
            tensor.copy_(on_device.cpu())
        else:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        import torch

        torch.distributed.barrier()


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's value of a small picklable object, on every rank."""
    if not ctx.distributed:
        return obj
    import torch

    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
