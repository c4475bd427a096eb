"""Training on several processes (one per GPU, or CPU processes with gloo) with torchrun.

    torchrun --nproc_per_node 4 examples/torchrun_train.py --steps 5000
    torchrun --nproc_per_node 2 examples/torchrun_train.py --steps 200 --out run/   # on a CPU

There is no distributed code here: `sl.train` reads RANK / WORLD_SIZE / LOCAL_RANK, joins the
process group, trains a DDP-wrapped model on cuda:LOCAL_RANK (or the CPU), gives each process its
slice of every global batch, and writes checkpoints from rank 0. Every rank ends with the same
weights; rank 0 saves the model.
"""

import argparse
import os
from pathlib import Path

import torch

import straightline as sl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=256, help="the global batch, over all processes")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("torchrun-run"))
    args = parser.parse_args()
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = sl.models.MLP(dim=2, hidden=args.hidden)
    result = sl.train(model, "checkerboard", steps=args.steps, batch_size=args.batch_size, lr=1e-3,
                      checkpoint=args.out / "state.pt", checkpoint_every=max(1, args.steps // 4), progress=False)
    if int(os.environ.get("RANK", "0")) == 0:
        sl.save(result.ema_model, args.out / "model.safetensors")
        world = os.environ.get("WORLD_SIZE", "1")
        print(f"{result} on {world} process(es); saved {args.out / 'model.safetensors'}")


if __name__ == "__main__":
    main()
