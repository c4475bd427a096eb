"""Several processes, one per device, under `torchrun`: joining the process group from the environment.

`torchrun --nproc_per_node N script.py` starts N copies of a script with RANK, WORLD_SIZE and
LOCAL_RANK in their environment. `context()` reads them; with WORLD_SIZE > 1 it joins the default
process group (NCCL when CUDA is available, else gloo) unless the caller already did, and picks the
device cuda:LOCAL_RANK (the CPU without CUDA). Without torchrun it describes a single process.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["Context", "context"]


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
