"""The toolkit's commands: `straightline train` and `straightline sample`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_toolkit_commands"]

COUPLINGS = ("independent", "exact_ot")


def add_toolkit_commands(sub, positive_int) -> None:
    # dataset and method names are checked in the handlers: listing them here would import torch
    # for every command, `serve` included
    p = sub.add_parser("train", help="train a 2-D flow-matching model on a toy dataset")
    p.add_argument("--data", required=True, metavar="NAME", help="a toy dataset: two_clusters, 8gaussians, moons, checkerboard, spirals")
    p.add_argument("--steps", type=positive_int("steps", 1_000_000), default=3000)
    p.add_argument("--batch-size", type=positive_int("batch-size", 65_536), default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--coupling", choices=COUPLINGS, default="independent", metavar="NAME", help=f"one of: {', '.join(COUPLINGS)}")
    p.add_argument("--hidden", type=positive_int("hidden", 4096), default=256)
    p.add_argument("--depth", type=positive_int("depth", 16), default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-n", type=positive_int("eval-n", 20_000), default=2000, help="points for the final W2")
    p.add_argument("--out", required=True, type=Path, help="where to write the .safetensors checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_train)

    p = sub.add_parser("sample", help="draw samples from a saved model")
    p.add_argument("--model", required=True, type=Path, help="a .safetensors checkpoint written by `train`")
    p.add_argument("--n", type=positive_int("n", 1_000_000), default=1000)
    p.add_argument("--steps", type=positive_int("steps", 100_000), default=20)
    p.add_argument("--method", default="euler", metavar="NAME", help="euler, midpoint, heun, rk4 or dopri5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="where to write the samples (.npy)")
    p.set_defaults(handler=_sample)


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import torch

    from . import couplings, metrics
    from .checkpoints import save
    from .data import toy
    from .models import MLP
    from .solvers import sample
    from .training import train

    from .data import toy_names

    if args.data not in toy_names():
        parser.error(f"--data: unknown dataset {args.data!r}; accepted: {', '.join(toy_names())}")
    if not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    if args.out.suffix != ".safetensors":
        parser.error(f"--out must end in .safetensors, got {str(args.out)!r}")
    torch.manual_seed(args.seed)
    model = MLP(dim=2, hidden=args.hidden, depth=args.depth)
    coupling = None if args.coupling == "independent" else couplings.exact_ot
    result = train(
        model, args.data, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        coupling=coupling, seed=args.seed, progress=not args.quiet,
    )
    save(result.ema_model, args.out, metadata={"dataset": args.data, "coupling": args.coupling, "steps": str(args.steps)})
    x_0 = torch.randn(args.eval_n, 2, generator=torch.Generator().manual_seed(args.seed + 1))
    x_1 = sample(result.ema_model, x_0, steps=100)
    dist = metrics.w2(x_1, toy(args.data, args.eval_n, seed=args.seed + 2))
    floor = metrics.w2_floor(args.data, args.eval_n)
    print(f"saved {args.out}")
    print(f"final loss {sum(result.losses[-100:]) / len(result.losses[-100:]):.4f} after {len(result.losses)} steps "
          f"({result.seconds:.1f} s)")
    print(f"W2 {dist:.4f} (floor {floor:.4f}, ratio {dist / floor:.2f}) at 100 Euler steps, n={args.eval_n}")
    return 0


def _sample(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import numpy as np
    import torch

    from .checkpoints import load
    from .solvers import METHODS, integrate

    if args.method not in METHODS:
        parser.error(f"--method: unknown method {args.method!r}; accepted: {', '.join(METHODS)}")
    if not args.model.is_file():
        parser.error(f"--model {str(args.model)!r} does not exist")
    if args.out.suffix != ".npy":
        parser.error(f"--out must end in .npy, got {str(args.out)!r}")
    try:
        model = load(args.model)
    except ValueError as exc:
        parser.error(f"--model: {exc}")
    dim = model.config.get("dim")
    if dim is None:
        parser.error("--model: only vector models (MLP) can be sampled from the command line")
    x_0 = torch.randn(args.n, dim, generator=torch.Generator().manual_seed(args.seed))
    steps = None if args.method == "dopri5" else args.steps
    traj = integrate(model, x_0, steps=steps, method=args.method)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, traj.x.numpy())
    print(f"wrote {args.n} samples to {args.out} ({args.method}, {traj.nfe} evaluations)", file=sys.stderr)
    return 0
