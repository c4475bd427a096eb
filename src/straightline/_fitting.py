"""The optimisation loop shared by reflow and distillation: Adam on a fixed table of examples.

`training.train` draws fresh noise (and, for toy datasets, fresh data) every step. Reflow and
distillation instead train on a table made once from an old model: N pairs, or N teacher states
with their targets. `fit` runs minibatches of row indices through a caller's loss with the same
conventions as `training.train` (it is the same loop, `loop.run`, under a `TrainConfig`): AdamW, an
EMA copy with the same warm-up, a tqdm bar, and a seeded run that leaves the global random state
alone (same seed, same weights).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_positive_int
from .batches import index_batches
from .distributed import Context
from .loop import BASELINE_DEFAULTS, TrainConfig, TrainResult, configure_steps, run, training_device
from .solvers import Velocity

__all__ = ["check_labels", "conditioned", "fit", "fit_config", "noise_spec", "on_device",
           "stage_config", "tail_mean"]

def fit_config(config: TrainConfig | None, options: dict[str, Any], *, caller: str, desc: str,
               defaults: Mapping[str, Any] | None = None) -> TrainConfig:
    """The TrainConfig of `caller`: `config`, else BASELINE_DEFAULTS and `defaults`, with `options` (its
    TrainConfig keywords; `train_steps=` is `steps=`). Without either a steps value: ValueError."""
    options = dict(options)
    if "train_steps" in options:
        if "steps" in options:
            raise ValueError(f"{caller} takes train_steps or steps (the same thing: optimizer steps), not both")
        options["steps"] = check_positive_int(options.pop("train_steps"), "train_steps")
    base = {**BASELINE_DEFAULTS, "desc": desc, **(defaults or {})}
    config = configure_steps(caller, config, base, options, steps_name="train_steps")
    if config.val_data is not None:
        raise ValueError(f"{caller} trains on a fixed table of rows, so val_data is not accepted; "
                         "use val_metric (a function of the EMA model) with val_every")
    return config


def stage_config(config: TrainConfig, k: int, of: int, *, seed: int, desc: str) -> TrainConfig:
    """`config` for run k (from 1) of `of` runs: its seed and label; checkpoints go to NAME.runK.EXT."""
    if of > 1 and config.resume is not None:
        raise ValueError(f"resume continues one training run, and this call trains {of} (one per round or "
                         "stage); resume a single run instead (reflow, or distill with method='one_shot')")
    checkpoint = config.checkpoint
    if checkpoint is not None and of > 1:
        path = Path(checkpoint)
        checkpoint = path.with_name(f"{path.stem}.run{k}{path.suffix}")
    return replace(config, seed=seed, desc=desc, checkpoint=checkpoint)


def on_device(model: nn.Module, config: TrainConfig) -> nn.Module:
    """`model`, or a copy of it on the device `config` trains on (the tables must live there too)."""
    device = training_device(config, model)
    param = next(iter(model.parameters()), None)
    if param is None or param.device == device:
        return model
    return copy.deepcopy(model).to(device)


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


def fit(model: nn.Module, loss_fn: Callable[[nn.Module, Tensor], Tensor], n: int, config: TrainConfig) -> TrainResult:
    """Minimise loss_fn(model, idx) over minibatches idx [B] of the rows 0..n-1 (shuffled epochs).

    Trains `model` in place (through `loop.run`, the loop under `train`) and returns it with its
    EMA copy (decay `config.ema`, warmed up as in `training.train`) and the loss of every step.
    """
    model.requires_grad_(True)  # a frozen EMA copy can be the warm start

    def make_source(other, generator: torch.Generator, ctx: Context | None = None):
        ctx = ctx or Context()
        rows = config.micro_batch  # per optimizer step: accumulate micro-batches
        return index_batches(n, batch_size=rows, generator=generator, rank=ctx.rank, world=ctx.world)

    return run(model, make_source, loss_fn, config)
