"""Several processes, one per device, under `torchrun`: joining the process group from the environment.

`torchrun --nproc_per_node N script.py` starts N copies of a script with RANK, WORLD_SIZE and
LOCAL_RANK in their environment. `context()` reads them; with WORLD_SIZE > 1 it joins the default
process group (NCCL when CUDA is available, else gloo) unless the caller already did, and picks the
device cuda:LOCAL_RANK (the CPU without CUDA). Without torchrun it describes a single process.
"""

from __future__ import annotations

import atexit
import inspect
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Context", "context", "wrap"]


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # the device this process trains on (None: the caller's choice)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {text!r}") from None


def context() -> Context:
    """This process's place in a torchrun job (joining its process group on first use)."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return Context()
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        atexit.register(_leave)
    return Context(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=device)


def _leave() -> None:
    """Leave the process group at exit, all ranks together: a gloo rank that tears down while its
    peers are still at work (rank 0 saving the model) can abort in gloo's teardown."""
    if not dist.is_initialized():
        return
    if dist.get_backend() == "gloo":
        try:  # bounded: a rank that crashed must not keep the others from exiting
            dist.monitored_barrier(timeout=timedelta(seconds=60))
        except RuntimeError:
            pass
    dist.destroy_process_group()


def _buffer_sync(each_forward: bool) -> dict[str, bool]:
    """DDP's keyword for syncing buffers before each forward: forward_sync_buffers (torch >= 2.13, where
    buffers are still synced once at wrap time), else the older broadcast_buffers."""
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters:
        return {"forward_sync_buffers": each_forward}
    return {"broadcast_buffers": each_forward}


def wrap(model: nn.Module, device: torch.device) -> nn.parallel.DistributedDataParallel:
    """`model` in DDP, set up for small models whose step is short next to a collective:

    - buffers are broadcast from rank 0 before each forward only when the model has persistent
      buffers (state such as BatchNorm's running statistics); non-persistent ones (the time
      embedding's frequencies) are constants that every rank computes alike, so a broadcast per
      step would be a collective for nothing;
    - gradients are views into the all-reduce buckets (no copy into the buckets and back);
    - gradients are all-reduced bucket by bucket as backward produces them, with no search for
      unused parameters (find_unused_parameters=False: every parameter gets a gradient each step).
    """
    persistent = set(model.state_dict())
    stateful = any(name in persistent for name, _ in model.named_buffers())
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True,
        **_buffer_sync(stateful),
    )
