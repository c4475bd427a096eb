"""Per-step time of one training step under torchrun, paired in the same processes (toy_suite.py section 5c).

    torchrun --standalone --nproc_per_node 2 bench/_ddp_overhead.py --steps 300 --batch 256

Each rank interleaves, step by step, three copies of the same MLP (straightline.train's default):
no DDP (each rank on its own: the compute of a step), DDP with torch's default options, and DDP as
`straightline.distributed.wrap` sets it up. A load change on the machine hits the three alike.
Rank 0 prints one line `STEP <variant> <median seconds>` per variant.
"""

import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist
from torch import nn

import straightline as sl
from straightline import distributed

VARIANTS = ("no DDP", "DDP defaults", "distributed.wrap")


def _nets(ctx: distributed.Context) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    base = sl.models.MLP(dim=2)
    nets = {}
    for name in VARIANTS:
        model = sl.models.MLP(dim=2)
        model.load_state_dict(base.state_dict())
        if name == "DDP defaults":
            nets[name] = (model, nn.parallel.DistributedDataParallel(model))
        elif name == "distributed.wrap":
            nets[name] = (model, distributed.wrap(model, torch.device("cpu")))
        else:
            nets[name] = (model, model)
    return nets


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warm", type=int, default=20)
    p.add_argument("--batch", type=int, default=256, help="rows per process")
    a = p.parse_args()
    torch.set_num_threads(1)
    ctx = distributed.context()
    nets = _nets(ctx)
    optims = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, (m, _) in nets.items()}
    x = sl.data.toy("moons", a.batch, seed=ctx.rank)  # [B, 2]
    times = {k: [] for k in VARIANTS}
    for i in range(a.warm + a.steps):
        for name in VARIANTS:
            dist.barrier()  # every variant starts its step on both ranks together
            start = time.perf_counter()
            loss = sl.cfm_loss(nets[name][1], x, coupling=sl.couplings.exact_ot)
            loss.backward()
            optims[name].step()
            optims[name].zero_grad(set_to_none=True)
            if i >= a.warm:
                times[name].append(time.perf_counter() - start)
    if ctx.rank == 0:
        for name in VARIANTS:
            print(f"STEP {name} {statistics.median(times[name]):.6e}")


if __name__ == "__main__":
    main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.barrier()
