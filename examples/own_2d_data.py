"""Train a flow on your own 2-D points from a file, then sample it.

    python examples/own_2d_data.py points.npy --steps 3000
    python examples/own_2d_data.py --make-demo ring.npy        # writes a demo file first

The file holds an array [N, 2] (.npy, or a tensor saved with torch.save as .pt).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

import straightline as sl


def make_demo(path: Path, n: int = 4000) -> None:
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = 2.0 + 0.15 * rng.standard_normal(n)
    np.save(path, np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))  # [N, 2] a ring


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--make-demo", action="store_true", help="write a ring of points to DATA first")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("samples.npy"))
    args = parser.parse_args()
    if args.make_demo:
        make_demo(args.data)
    points = np.load(args.data) if args.data.suffix == ".npy" else torch.load(args.data, weights_only=True)
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=args.hidden)
    result = sl.train(model, points, steps=args.steps, coupling="exact_ot", progress=False)
    x_1 = sl.sample(result.ema_model, torch.randn(2000, 2), steps=20, method="midpoint")
    np.save(args.out, x_1.numpy())
    reference = torch.as_tensor(points, dtype=torch.float32)[:2000]
    print(f"{result}; W2 to the data {sl.metrics.w2(x_1, reference):.3f}; samples in {args.out}")


if __name__ == "__main__":
    main()
