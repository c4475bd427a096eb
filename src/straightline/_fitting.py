"""The optimisation loop shared by reflow and distillation: Adam on a fixed table of examples.

`training.train` draws fresh noise (and, for toy datasets, fresh data) every step. Reflow and
distillation instead train on a table made once from an old model: N pairs, or N teacher states
with their targets. `fit` runs minibatches of row indices through a caller's loss with the same
conventions as `training.train`: Adam, an EMA copy with the same warm-up, a tqdm bar, and a
seeded run that leaves the global random state alone (same seed, same weights).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._checks import check_positive_int
from .batches import index_batches
from .distributed import Context
from .loop import TrainConfig, TrainResult, run
from .solvers import Velocity

__all__ = ["check_fit_args", "check_labels", "conditioned", "fit", "noise_spec", "tail_mean"]





def check_fit_args(*, train_steps: object, batch_size: object, lr: object, ema: object) -> None:
    check_positive_int(train_steps, "train_steps")
    TrainConfig(steps=train_steps, batch_size=batch_size, lr=lr, ema=ema).check()


def conditioned(model: Callable[..., Tensor], y: Tensor | None) -> Velocity:
    """v(x, t) from a model: the model itself, or with the labels y [B] bound as its third argument."""
    if y is None:
        return model
    return lambda x, t: model(x, t, y)


def noise_spec(model: nn.Module, shape: tuple[int, ...] | None) -> tuple[tuple[int, ...], torch.dtype, torch.device]:
    """Per-sample shape, dtype and device of the noise a model takes.

    The shape is `shape` when given, else (model.dim,) for models with a `dim` (the MLP); dtype and
    device are those of the model's first parameter (float32 on the CPU for a model without any).
    """
    if shape is None:
        dim = getattr(model, "dim", None)
        if not isinstance(dim, int):
            raise ValueError(
                f"cannot tell the sample shape of a {type(model).__name__}; pass shape=(...), "
                "e.g. shape=(1, 8, 8) for digit images"
            )
        shape = (dim,)
    shape = tuple(shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"shape must be a non-empty tuple of positive integers, got {shape!r}")
    param = next(iter(model.parameters()), None)
    if param is None:
        return shape, torch.get_default_dtype(), torch.device("cpu")
    return shape, param.dtype, param.device


def check_labels(labels: Tensor | None, n: int, name: str = "labels") -> None:
    if labels is not None and (not isinstance(labels, Tensor) or labels.shape != (n,)):
        got = getattr(labels, "shape", labels)
        raise ValueError(f"{name} must be a tensor of shape [{n}] (one class per pair), got {got!r}")


def tail_mean(losses: list[float], fraction: float = 0.1) -> float:
    """Mean of the last `fraction` of the values (at least one): a less noisy 'final loss'."""
    if not losses:
        return float("nan")
    k = max(1, int(len(losses) * fraction))
    return float(sum(losses[-k:]) / k)


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Tensor], Tensor],
    n: int,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    ema: float | None,
    seed: int,
    progress: bool,
    desc: str,
) -> TrainResult:
    """Minimise loss_fn(model, idx) over minibatches idx [B] of the rows 0..n-1 (shuffled epochs).

    Trains `model` in place (through `loop.run`, the loop under `train`) and returns it with its
    EMA copy (decay `ema`, warmed up as in `training.train`) and the loss of every step.
    """
    model.requires_grad_(True)  # a frozen EMA copy can be the warm start
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, ema=ema, seed=seed, progress=progress, desc=desc)

    def make_source(other, generator: torch.Generator, ctx: Context | None = None):
        ctx = ctx or Context()
        return index_batches(n, batch_size=batch_size, generator=generator, rank=ctx.rank, world=ctx.world)

    return run(model, make_source, loss_fn, config)
