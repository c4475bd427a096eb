"""Training a flow map from data on the toolkit's one optimisation loop (`straightline.training.optimise`)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..data import toy, toy_names
from ..training import TrainResult, check_train_args, optimise
from .losses import lsd_loss, meanflow_loss, shortcut_loss
from .maps import check_flow_map

__all__ = ["train", "LOSSES", "train_on_loss"]

LOSSES: dict[str, Callable[..., Tensor]] = {"meanflow": meanflow_loss, "shortcut": shortcut_loss, "lsd": lsd_loss}
_OPTIONS = {
    "meanflow": ("noise_fn", "time_sampler", "diagonal", "weight_power", "weight_eps"),
    "shortcut": ("noise_fn", "diagonal", "max_steps"),
    "lsd": ("noise_fn", "diagonal"),
}


def _batches(data: str | Tensor, batch_size: int) -> Callable[[torch.Generator], Callable[[], Tensor]]:
    """make_batches(generator) for `optimise`: fresh toy draws, or shuffled epochs of a tensor [N, ...]."""
    if isinstance(data, str):
        if data not in toy_names():
            raise ValueError(f"unknown dataset {data!r}; accepted: {', '.join(toy_names())} or a tensor")
        return lambda generator: (lambda: toy(data, batch_size, generator=generator))
    if not isinstance(data, Tensor) or data.ndim < 2 or data.shape[0] < 1:
        raise ValueError(f"data must be a dataset name or a tensor [N, ...], got {type(data).__name__}")

    def make(generator: torch.Generator) -> Callable[[], Tensor]:
        state = {"order": torch.randperm(len(data), generator=generator), "pos": 0}  # order [N]

        def next_batch() -> Tensor:  # [batch_size, ...] rows of shuffled epochs
            parts, need = [], batch_size
            while need:
                take = state["order"][state["pos"] : state["pos"] + need]
                parts.append(take)
                need -= len(take)
                state["pos"] += len(take)
                if state["pos"] >= len(data):
                    state["order"], state["pos"] = torch.randperm(len(data), generator=generator), 0
            return data[torch.cat(parts)]

        return next_batch

    return make


def train_on_loss(
    model: nn.Module,
    data: str | Tensor,
    loss_fn: Callable[[nn.Module, Tensor], Tensor],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    ema: float | None,
    seed: int,
    progress: bool,
    desc: str,
    callback: Callable[[int, float, nn.Module], bool | None] | None,
) -> TrainResult:
    """Minimise loss_fn(model, x_1) over batches x_1 of `data` on the loop under `straightline.train`.

    The one adapter between the flow-map losses and the shared loop (Adam, EMA with warm-up,
    tqdm bar, seeded run that leaves the global random state alone).
    """
    check_train_args(model, steps=steps, batch_size=batch_size, lr=lr, ema=ema)
    return optimise(model, _batches(data, batch_size), loss_fn, steps=steps, lr=lr, ema=ema, seed=seed,
                    progress=progress, desc=desc, callback=callback)


def train(
    model: nn.Module,
    data: str | Tensor,
    *,
    method: str = "meanflow",
    steps: int,
    seed: int = 0,
    batch_size: int = 256,
    lr: float = 1e-3,
    ema: float | None = 0.999,
    progress: bool = True,
    callback: Callable[[int, float, nn.Module], bool | None] | None = None,
    **loss_options: Any,
) -> TrainResult:
    """Train a flow-map network u(x, s, t) from data with `method` = "meanflow", "shortcut" or "lsd".

    `data` is a toy dataset name (fresh samples every step) or a tensor [N, ...] (shuffled
    epochs). Same loop and arguments as `straightline.train` (Adam at `lr`, an EMA copy with decay
    `ema`, a progress bar, `callback(step, loss, model)` returning True to stop; equal arguments
    give bit-identical weights on the CPU). `loss_options` go to the method's loss (see
    `meanflow_loss`, `shortcut_loss`, `lsd_loss`; the papers' settings are the defaults). Returns
    a `TrainResult` whose `ema_model` is the flow map to sample with `flowmaps.sample`.
    """
    if method not in LOSSES:
        raise ValueError(f"unknown method {method!r}; accepted: {', '.join(LOSSES)}")
    unknown = sorted(set(loss_options) - set(_OPTIONS[method]))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for method {method!r}; "
                         f"accepted: {', '.join(_OPTIONS[method])}")
    check_flow_map(model, "model")
    loss = LOSSES[method]
    return train_on_loss(model, data, lambda net, x_1: loss(net, x_1, **loss_options), steps=steps,
                         batch_size=batch_size, lr=lr, ema=ema, seed=seed, progress=progress,
                         desc=f"{method} training", callback=callback)
