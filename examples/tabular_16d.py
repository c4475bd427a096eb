"""A 16-dimensional tabular set: train with validation, a warm-up/cosine schedule and a checkpoint.

    python examples/tabular_16d.py --steps 4000

The data are 16 correlated features drawn from a mixture of three Gaussians (a stand-in for a
real table: replace `make_table` with your own numpy array [N, 16], standardised per column).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

import straightline as sl


def make_table(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((16, 16)) / 4  # shared correlations
    centres = rng.standard_normal((3, 16)) * 2
    which = rng.integers(0, 3, n)
    return (centres[which] + rng.standard_normal((n, 16)) @ mix).astype(np.float32)  # [N, 16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--checkpoint", type=Path, default=Path("tabular-state.pt"))
    args = parser.parse_args()
    table = make_table(args.rows)
    mean, std = table.mean(0), table.std(0)
    table = (table - mean) / std  # standardise each column
    train_rows, val_rows = table[: int(0.9 * len(table))], table[int(0.9 * len(table)) :]
    torch.manual_seed(0)
    model = sl.models.MLP(dim=16, hidden=args.hidden, depth=3)
    result = sl.train(model, train_rows, steps=args.steps, batch_size=256, lr=2e-3, warmup_steps=args.steps // 20,
                      schedule="cosine", weight_decay=1e-4, grad_clip=1.0, val_data=val_rows,
                      val_every=max(1, args.steps // 4), checkpoint=args.checkpoint,
                      checkpoint_every=max(1, args.steps // 4), progress=False)
    for row in result.validation:
        print(f"step {int(row['step']):5d}: validation loss {row['loss']:.4f}")
    x = sl.sample(result.ema_model, torch.randn(2000, 16), steps=20, method="midpoint")
    w2 = sl.metrics.w2(x, torch.as_tensor(val_rows[:2000]))
    print(f"{result}; W2 to held-out rows {w2:.3f} (16-D)")


if __name__ == "__main__":
    main()
