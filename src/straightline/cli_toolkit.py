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
    p = sub.add_parser("train", help="train a flow-matching MLP on a toy dataset or your own points")
    p.add_argument("--data", required=True, metavar="NAME|FILE",
                   help="a toy dataset (two_clusters, 8gaussians, moons, checkerboard, spirals) or a .npy/.pt file of "
                        "points [N, D]")
    p.add_argument("--steps", type=positive_int("steps", 1_000_000), default=3000)
    p.add_argument("--batch-size", type=positive_int("batch-size", 65_536), default=128)  # train's defaults
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--coupling", choices=COUPLINGS, default="exact_ot", metavar="NAME", help=f"one of: {', '.join(COUPLINGS)}")
    p.add_argument("--hidden", type=positive_int("hidden", 4096), default=128)  # MLP's default
    p.add_argument("--depth", type=positive_int("depth", 16), default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-n", type=positive_int("eval-n", 20_000), default=2000, help="points for the final W2")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cpu; cuda:LOCAL_RANK under torchrun)")
    p.add_argument("--checkpoint", type=Path, default=None, help="write the full training state here (resumable)")
    p.add_argument("--checkpoint-every", type=positive_int("checkpoint-every"), default=None, metavar="K")
    p.add_argument("--resume", type=Path, default=None, help="continue from a training state written by --checkpoint")
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


def _read_points(text: str, path: Path, parser: argparse.ArgumentParser):
    """The tensor in a .npy or .pt file; a usage error when it cannot be read."""
    import numpy as np
    import torch

    try:
        raw = np.load(path, allow_pickle=False) if path.suffix == ".npy" else torch.load(path, weights_only=True)
        return torch.as_tensor(raw)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a usage error
        parser.error(f"--data: cannot read {text!r} as an array of points: {exc}")


def _load_points(text: str, parser: argparse.ArgumentParser):
    """A toy dataset name, or the points [N, D] of a .npy / .pt file (float32)."""
    from .data import toy_names

    if text in toy_names():
        return text
    path = Path(text)
    if path.suffix not in (".npy", ".pt", ".pth"):
        parser.error(f"--data: unknown dataset {text!r}; accepted: {', '.join(toy_names())}, or a .npy/.pt file")
    if not path.is_file():
        parser.error(f"--data: no file {text!r}")
    points = _read_points(text, path, parser)
    if points.ndim != 2 or len(points) < 2 or not points.is_floating_point():
        parser.error(f"--data: {text!r} must hold floating-point points of shape [N, D], got {points.dtype} "
                     f"of shape {list(points.shape)}")
    return points.float()


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import os

    import torch

    from .models import MLP
    from .training import train

    data = _train_data(args, parser)
    dim = 2 if isinstance(data, str) else data.shape[1]
    torch.manual_seed(args.seed)
    model = MLP(dim=dim, hidden=args.hidden, depth=args.depth)
    options = {"checkpoint": args.checkpoint, "checkpoint_every": args.checkpoint_every or 0, "resume": args.resume}
    try:
        result = train(model, data, steps=args.steps, batch_size=args.batch_size, lr=args.lr, coupling=args.coupling,
                       seed=args.seed, progress=not args.quiet, device=args.device, **options)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 writes and reports
    _save_trained(args, data, result)
    return 0


def _train_data(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The data of `train` (a toy name or points [N, D]), after checking --lr and --out."""
    data = _load_points(args.data, parser)
    if not args.lr > 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    if args.out.suffix != ".safetensors":
        parser.error(f"--out must end in .safetensors, got {str(args.out)!r}")
    return data


def _save_trained(args: argparse.Namespace, data, result) -> None:
    """Save the EMA model with its dataset, coupling and steps as metadata, and report on it."""
    from .checkpoints import save

    name = args.data if isinstance(data, str) else Path(args.data).name
    save(result.ema_model, args.out, metadata={"dataset": name, "coupling": args.coupling, "steps": str(args.steps)})
    _report(args, data, result)


def _report(args: argparse.Namespace, data, result) -> None:
    import torch

    from . import metrics
    from .data import toy
    from .solvers import sample

    tail = result.losses[-100:]
    print(f"saved {args.out}")
    print(f"final loss {sum(tail) / len(tail):.4f} after {len(result.losses)} steps ({result.seconds:.1f} s)")
    model = result.ema_model.cpu()
    n = args.eval_n if isinstance(data, str) else min(args.eval_n, len(data))
    x_0 = torch.randn(n, model.dim, generator=torch.Generator().manual_seed(args.seed + 1))
    x_1 = sample(model, x_0, steps=100)
    reference = toy(args.data, n, seed=args.seed + 2) if isinstance(data, str) else data[:n]
    dist = metrics.w2(x_1, reference)
    if isinstance(data, str):
        band = metrics.w2_floor_band(args.data, n)
        verdict = "inside" if dist <= band.high else f"{dist / band.high:.2f}x above"
        print(f"W2 {dist:.4f} at 100 Euler steps, n={n}; the floor (two fresh draws of the data, "
              f"{band.repeats} pairs) spans {band.low:.4f}-{band.high:.4f}: {verdict} that band")
    else:
        print(f"W2 {dist:.4f} to {n} of your points at 100 Euler steps")


def _sample_model(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The vector model `sample` draws from, after checking --method, --model and --out."""
    from .checkpoints import load
    from .solvers import METHODS

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
    if model.config.get("dim") is None:
        parser.error("--model: only vector models (MLP) can be sampled from the command line")
    return model


def _sample(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import numpy as np
    import torch

    from .solvers import integrate

    model = _sample_model(args, parser)
    dim = model.config["dim"]
    x_0 = torch.randn(args.n, dim, generator=torch.Generator().manual_seed(args.seed))
    steps = None if args.method == "dopri5" else args.steps
    traj = integrate(model, x_0, steps=steps, method=args.method)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, traj.x.numpy())
    print(f"wrote {args.n} samples to {args.out} ({args.method}, {traj.nfe} evaluations)", file=sys.stderr)
    return 0
