"""The training loop: conditional flow matching with Adam, an EMA copy, and a progress bar.

Same seed, same result: on the CPU two runs with equal arguments produce bit-identical weights.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._checks import check_positive_int
from .data import toy, toy_names
from .losses import cfm_loss
from .paths import GaussianPath
from .timesteps import TimeSampler

__all__ = ["train", "TrainResult", "check_train_args", "drop_labels", "ema_update", "optimise"]


@dataclass
class TrainResult:
    model: nn.Module  # the trained network (last iterate)
    ema_model: nn.Module  # its exponential moving average: usually the better sampler
    losses: list[float] = field(default_factory=list)  # one value per step
    seconds: float = 0.0


@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for every parameter."""
    ema_params = list(ema_model.parameters())
    params = list(model.parameters())
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)


class _Batches:
    """Minibatches of data: fresh draws from a named toy dataset, or shuffled epochs of a tensor."""

    def __init__(self, data: str | Tensor, labels: Tensor | None, batch_size: int, generator: torch.Generator):
        self.batch_size, self.generator, self.labels = batch_size, generator, labels
        if isinstance(data, str):
            if data not in toy_names():
                raise ValueError(f"unknown dataset {data!r}; accepted: {', '.join(toy_names())} or a tensor")
            if labels is not None:
                raise ValueError("labels can only be given with a data tensor")
            self.name, self.data = data, None
        else:
            if not isinstance(data, Tensor) or data.ndim < 2 or data.shape[0] < 1:
                raise ValueError(f"data must be a dataset name or a tensor [N, ...], got {type(data).__name__}")
            if labels is not None and labels.shape != (data.shape[0],):
                raise ValueError(f"labels must have shape [{data.shape[0]}], got {list(labels.shape)}")
            self.name, self.data = None, data
            self.order, self.pos = torch.randperm(len(data), generator=generator), 0

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.data is None:
            return toy(self.name, self.batch_size, generator=self.generator), None
        idx = []
        need = self.batch_size
        while need:
            take = self.order[self.pos : self.pos + need]
            idx.append(take)
            need -= len(take)
            self.pos += len(take)
            if self.pos >= len(self.order):
                self.order, self.pos = torch.randperm(len(self.data), generator=self.generator), 0
        index = torch.cat(idx)  # [batch]
        return self.data[index], None if self.labels is None else self.labels[index]


def train(
    model: nn.Module,
    data: str | Tensor,
    *,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    path: GaussianPath | None = None,
    coupling: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
    t_sampler: TimeSampler | None = None,
    weight: Callable[[Tensor], Tensor] | None = None,
    ema: float | None = 0.999,
    seed: int = 0,
    progress: bool = True,
    labels: Tensor | None = None,
    label_dropout: float = 0.0,
    callback: Callable[[int, float, nn.Module], bool | None] | None = None,
) -> TrainResult:
    """Train `model` (a velocity field v(x, t)) by conditional flow matching.

    `data` is a toy dataset name (fresh samples every step) or a tensor [N, ...] (shuffled
    epochs). With `labels` [N] the model is called as model(x, t, y), and with probability
    `label_dropout` a label is replaced by the model's null class (`model.num_classes`), which
    trains the unconditional field alongside the conditional one (classifier-free guidance). `ema` is the decay of the
    averaged copy (with a warm-up so early steps count; None or 0 keeps no average). `callback(step,
    loss, model)` runs after each step; returning True stops training early.
    """
    check_train_args(model, steps=steps, batch_size=batch_size, lr=lr, ema=ema, label_dropout=label_dropout)

    def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor | None]) -> Tensor:
        x_1, y = batch  # [B, ...] data, [B] labels or None
        y = drop_labels(model, y, label_dropout)
        v = model if y is None else (lambda x, t: model(x, t, y))
        return cfm_loss(v, x_1, path=path, coupling=coupling, t_sampler=t_sampler, weight=weight)

    return optimise(
        model,
        lambda generator: _Batches(data, labels, batch_size, generator).next,
        loss_fn,
        steps=steps, lr=lr, ema=ema, seed=seed, progress=progress, desc="training", callback=callback,
    )


def check_train_args(
    model: nn.Module, *, steps: object, batch_size: object, lr: object, ema: object, label_dropout: object = 0.0
) -> None:
    """The argument checks `train` and the DDPM baseline share (ValueError naming the bad value)."""
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if not isinstance(label_dropout, (int, float)) or not 0 <= label_dropout < 1:
        raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout!r}")
    if label_dropout and getattr(model, "num_classes", None) is None:
        raise ValueError("label_dropout needs a class-conditional model (one with num_classes)")
    if ema is not None and (not isinstance(ema, (int, float)) or not 0 <= ema < 1):
        raise ValueError(f"ema must be None or a number in [0, 1), got {ema!r}")


def drop_labels(model: nn.Module, y: Tensor | None, p: float) -> Tensor | None:
    """Labels [B] with each one replaced by the model's null class with probability p (CFG training)."""
    if y is None or not p:
        return y
    return torch.where(torch.rand(len(y)) < p, model.num_classes, y)


def optimise(
    model: nn.Module,
    make_batches: Callable[[torch.Generator], Callable[[], Any]],
    loss_fn: Callable[[nn.Module, Any], Tensor],
    *,
    steps: int,
    lr: float,
    ema: float | None,
    seed: int,
    progress: bool,
    desc: str = "training",
    callback: Callable[[int, float, nn.Module], bool | None] | None = None,
) -> TrainResult:
    """The loop under `train` (and the DDPM baseline, reflow and distillation): Adam on
    loss_fn(model, batch), an EMA copy, a progress bar, and a seeded run.

    `make_batches(generator)` returns the function that draws each step's batch from that seeded
    generator. Inside, torch's global generator is seeded with `seed` and restored afterwards, so
    the caller's random state is left alone and equal arguments give bit-identical weights.
    """
    ema_model = copy.deepcopy(model).requires_grad_(False) if ema else model
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    result = TrainResult(model=model, ema_model=ema_model)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        next_batch = make_batches(torch.Generator().manual_seed(seed))
        model.train()
        bar = tqdm(range(steps), disable=not progress, desc=desc, unit="step", leave=False)
        # listing: train-step
        for step in bar:
            batch = next_batch()  # this step's data: [B, ...] (and labels [B] when there are any)
            loss = loss_fn(model, batch)  # for flow matching: cfm_loss on the batch
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # end listing
            if ema:
                ema_update(ema_model, model, min(ema, (1 + step) / (10 + step)))
            value = loss.item()
            result.losses.append(value)
            if progress and step % 50 == 0:
                bar.set_postfix(loss=f"{value:.4f}")
            if callback is not None and callback(step, value, model):
                break
    model.eval()
    ema_model.eval()
    result.seconds = time.perf_counter() - start
    return result
