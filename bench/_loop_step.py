"""Per-step time of straightline.train in one process (also run under torchrun by toy_suite.py section 5).

    python bench/_loop_step.py --steps 60 --warm 20 [--amp bf16] [--compile] [--coupling independent] --batch 256

Prints one line `STEP <seconds per step>` (rank 0): the median over the timed steps of the
interval between consecutive callbacks, after `--warm` steps (compilation, allocator growth).
"""

import argparse
import os
import statistics
import time

import torch

import straightline as sl


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warm", type=int, default=20)
    p.add_argument("--batch", type=int, default=256, help="global batch")
    p.add_argument("--amp", default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--coupling", default="auto", help="train's coupling: auto (exact OT here), independent, exact_ot")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    stamps = []
    torch.manual_seed(0)
    sl.train(sl.models.MLP(dim=2), "moons", steps=a.warm + a.steps, batch_size=a.batch, amp=a.amp, compile=a.compile, coupling=a.coupling,
             progress=False, callback=lambda s: stamps.append(time.perf_counter()))
    gaps = [b - c for b, c in zip(stamps[a.warm + 1 :], stamps[a.warm :])]
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"STEP {statistics.median(gaps):.6e}")


if __name__ == "__main__":
    main()
