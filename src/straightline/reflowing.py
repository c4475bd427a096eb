"""Reflow (Liu, Gong and Liu 2022, "Flow straight and fast"): straighten a trained flow.

One round: draw noise x_0, integrate the old model's ODE to its end point x_1 = Φ(x_0), and train
a new model (a copy warm-started from the old weights) by flow matching on the straight lines
between these coupled pairs: x_t = (1 - t) x_0 + t x_1 with target x_1 - x_0. Nearby noise goes
to nearby samples under one smooth flow, so the new segments cross less and the new field's
trajectories are straighter; few Euler steps then suffice.

    new = reflow(model, n_pairs=4096, steps=32, train_steps=2000)          # 1-rectified flow
    records = reflow_rounds(model, rounds=3, n_pairs=4096, steps=32,
                            train_steps=2000, reference="moons")          # rounds 0..3 measured

`reflow_rounds` repeats the procedure and measures every round (round 0 is the input model):
training loss, straightness, normalised path energy and sample quality at a few Euler step counts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import metrics
from ._checks import check_choice, check_positive_int
from ._fitting import check_labels, conditioned, fit, fit_config, noise_spec, on_device, stage_config, tail_mean
from .data import toy, toy_names
from .losses import cfm_loss
from .solvers import METHODS, integrate
from .loop import TrainConfig, TrainResult

__all__ = ["ReflowRound", "reflow", "reflow_pairs", "reflow_rounds"]


def _check_solver(solver: object) -> None:
    check_choice(solver, "solver", METHODS)


def reflow_pairs(
    model: nn.Module,
    n_pairs: int,
    *,
    steps: int,
    solver: str = "rk4",
    seed: int = 0,
    labels: Tensor | None = None,
    shape: tuple[int, ...] | None = None,
    chunk_size: int = 2048,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """The coupled pairs (x_0, Φ(x_0)) of `model`: noise [N, ...] and the ODE end points [N, ...].

    x_0 ~ N(0, I) is drawn from a generator seeded with `seed` (same seed, same pairs), in the
    dtype and on the device of the model's parameters; x_1 = integrate(model, x_0, steps=steps,
    method=solver).x, computed `chunk_size` rows at a time. With `labels` [N] a class-conditional
    model is integrated as model(x, t, labels). `shape` is the per-sample shape (default
    (model.dim,)).
    """
    check_positive_int(n_pairs, "n_pairs")
    check_positive_int(steps, "steps")
    check_positive_int(chunk_size, "chunk_size")
    _check_solver(solver)
    check_labels(labels, n_pairs)
    shape, dtype, device = noise_spec(model, shape)
    generator = torch.Generator().manual_seed(seed)
    # listing: reflow-pairs
    x_0 = torch.randn(n_pairs, *shape, generator=generator, dtype=dtype).to(device)  # [N, ...] noise at t = 0
    x_1 = torch.empty_like(x_0)  # [N, ...] the partner of each noise point
    for rows in tqdm(torch.arange(n_pairs).split(chunk_size), desc="reflow pairs", disable=not progress):
        v = conditioned(model, None if labels is None else labels[rows])  # v(x, t) for these rows
        # integrate the old model's ODE from t = 0 to t = 1: x_1 = Φ(x_0), [chunk, ...]
        x_1[rows] = integrate(v, x_0[rows], steps=steps, method=solver).x
    return x_0, x_1  # coupled pairs: straight lines between them are the new training paths
    # end listing


def _train_on_pairs(model: nn.Module, x_0: Tensor, x_1: Tensor, labels: Tensor | None,
                    config: TrainConfig) -> TrainResult:
    """Flow matching on fixed pairs: x_t = (1 - t) x_0[i] + t x_1[i], target x_1[i] - x_0[i]."""
    new = copy.deepcopy(model)  # warm start from the old weights

    def loss_fn(net: nn.Module, rows: Tensor) -> Tensor:  # rows [B]
        v = conditioned(net, None if labels is None else labels[rows])
        partner = x_0[rows]  # [B, ...] the noise each end point was integrated from
        return cfm_loss(v, x_1[rows], noise_fn=lambda _: partner)

    return fit(new, loss_fn, len(x_0), config)


def _reflow(model: nn.Module, *, n_pairs: int, steps: int, solver: str, labels: Tensor | None,
            shape: tuple[int, ...] | None, config: TrainConfig) -> TrainResult:
    model = on_device(model, config)  # the pairs live where the training runs
    _, _, device = noise_spec(model, shape)
    labels = None if labels is None else labels.to(device)
    x_0, x_1 = reflow_pairs(model, n_pairs, steps=steps, solver=solver, seed=config.seed, labels=labels, shape=shape,
                            progress=config.progress)  # [N, ...] each
    return _train_on_pairs(model, x_0, x_1, labels, config)


def reflow(
    model: nn.Module,
    *,
    n_pairs: int,
    steps: int,
    solver: str = "rk4",
    labels: Tensor | None = None,
    shape: tuple[int, ...] | None = None,
    config: TrainConfig | None = None,
    **options: Any,
) -> nn.Module:
    """One round of reflow: a new model trained on the straight lines between `model`'s own pairs.

    Draws `n_pairs` noise points x_0 (seeded by the training `seed`), integrates `model` with `steps`
    steps of `solver` to x_1 = Φ(x_0) (see `reflow_pairs`; errors of this solve become training
    data, so use an accurate one), then trains a deep copy of `model` by flow matching on
    minibatches of the fixed pairs (shuffled epochs) for `train_steps` optimizer steps.

    The training is `config` (a `TrainConfig`) or, without one, batch 256, lr 1e-3 and TrainConfig's
    other defaults (EMA 0.999 with warm-up, seed 0); every TrainConfig field can be given as a
    keyword (`train_steps` is its `steps`; device, grad_clip, amp, checkpoint, resume, callback,
    ...; not val_data). The EMA copy is returned (the trained copy itself when `ema` is None or
    0). The input model is not changed. `labels` [n_pairs] conditions a class-conditional model;
    `shape` is the per-sample shape (default (model.dim,)). The global random state is left
    alone: equal arguments give bit-identical weights.
    """
    config = fit_config(config, options, caller="reflow", desc="reflow training")
    return _reflow(model, n_pairs=n_pairs, steps=steps, solver=solver, labels=labels, shape=shape,
                   config=config).ema_model


@dataclass
class ReflowRound:
    """Measurements of one model of a reflow sequence (round 0 is the input model)."""

    round: int
    model: nn.Module
    loss: float | None  # mean training loss over the last 10% of steps; None for round 0
    straightness: float  # metrics.straightness on the evaluation noise (100 Euler steps)
    npe: float | None  # metrics.npe against the reference sample; None without a reference
    quality: dict[int, float]  # Euler steps -> W2 to the reference, or the caller's quality(samples)
    losses: list[float] = field(default_factory=list)  # every training step's loss (empty for round 0)


def _reference_sample(reference: Tensor | str | None, n: int, seed: int) -> Tensor | None:
    if reference is None or isinstance(reference, Tensor):
        if isinstance(reference, Tensor) and (reference.ndim < 2 or reference.shape[0] < 2):
            raise ValueError(f"reference must be a sample [M, ...] with M >= 2, got shape {list(reference.shape)}")
        return reference
    check_choice(reference, "reference dataset", toy_names(), " or a tensor")
    return toy(reference, n, seed=seed)


def _check_evaluation_args(
    rounds: object, eval_n: object, quality_steps: object, reference: object, quality: object
) -> None:
    """ValueError naming the first bad argument of `reflow_rounds` about rounds and measuring."""
    check_positive_int(rounds, "rounds")
    check_positive_int(eval_n, "eval_n")
    if not isinstance(quality_steps, (tuple, list)) or not quality_steps:
        raise ValueError(f"quality_steps must be a non-empty tuple of positive integers, got {quality_steps!r}")
    for k in quality_steps:
        check_positive_int(k, "each of quality_steps")
    if reference is None and quality is None:
        raise ValueError("reflow_rounds needs reference (a sample tensor or toy dataset name) or quality (a function)")
    if quality is not None and not callable(quality):
        raise ValueError(f"quality must be a function samples -> float, got {quality!r}")


def _quality_scores(
    net: nn.Module, x_eval: Tensor, ref: Tensor | None, quality_steps: tuple[int, ...],
    quality: Callable[[Tensor], float] | None,
) -> dict[int, float]:
    """Euler steps -> quality(samples), or W2 to `ref`, of `net`'s samples from x_eval [eval_n, ...]."""
    scores = {}
    for n_steps in quality_steps:
        samples = integrate(net, x_eval, steps=n_steps, method="euler").x  # [eval_n, ...]
        scores[n_steps] = float(quality(samples)) if quality is not None else metrics.w2(samples, ref)
    return scores


def _measure_round(
    k: int,
    net: nn.Module,
    losses: list[float],
    x_eval: Tensor,
    ref: Tensor | None,
    quality_steps: tuple[int, ...],
    quality: Callable[[Tensor], float] | None,
) -> ReflowRound:
    """Record k of `reflow_rounds`: `net` measured on the evaluation noise x_eval [eval_n, ...]."""
    scores = _quality_scores(net, x_eval, ref, quality_steps, quality)
    return ReflowRound(
        round=k,
        model=net,
        loss=tail_mean(losses) if losses else None,
        straightness=metrics.straightness(net, x_eval),
        npe=None if ref is None else metrics.npe(net, x_eval, ref),
        quality=scores,
        losses=list(losses),
    )


def reflow_rounds(
    model: nn.Module,
    *,
    rounds: int,
    n_pairs: int,
    steps: int,
    reference: Tensor | str | None = None,
    quality: Callable[[Tensor], float] | None = None,
    eval_n: int = 2000,
    quality_steps: tuple[int, ...] = (1, 2, 4, 100),
    solver: str = "rk4",
    shape: tuple[int, ...] | None = None,
    config: TrainConfig | None = None,
    **options: Any,
) -> list[ReflowRound]:
    """Run `rounds` rounds of reflow from `model` and measure every round; returns rounds + 1 records.

    Round k >= 1 is `reflow(model_{k-1}, ..., seed=seed + k - 1)` (round 1 equals a plain `reflow`
    call with `seed`; training as in `reflow`, `train_steps` per round; round k checkpoints to
    PATH.runK; no resume), and record k keeps its model. Each model is measured on the same
    `eval_n` noise points: straightness and NPE (`straightline.metrics`, 100 Euler steps), and the
    quality of its samples after each number of Euler steps in `quality_steps`: `quality(samples)`
    when that function is given (e.g. a digit-feature distance; lower is better), else the W2
    distance to `reference`, a sample tensor [M, ...] or a toy dataset name from which `eval_n`
    points are drawn. NPE needs `reference`; it is None without one.
    """
    _check_evaluation_args(rounds, eval_n, quality_steps, reference, quality)
    config = fit_config(config, options, caller="reflow_rounds", desc="reflow training")
    stage_config(config, 1, rounds, seed=config.seed, desc=config.desc)  # ValueError for resume with rounds > 1
    check_positive_int(n_pairs, "n_pairs")
    check_positive_int(steps, "steps")
    _check_solver(solver)
    model = on_device(model, config)
    shape, dtype, device = noise_spec(model, shape)
    ref = _reference_sample(reference, eval_n, seed=config.seed + 20_000)  # [M, ...] or None
    x_eval = torch.randn(eval_n, *shape, generator=torch.Generator().manual_seed(config.seed + 10_000), dtype=dtype)
    x_eval = x_eval.to(device)  # [eval_n, ...] the same noise for every round
    ref = ref if ref is None else ref.to(device)

    def measure(k: int, net: nn.Module, losses: list[float]) -> ReflowRound:
        return _measure_round(k, net, losses, x_eval, ref, quality_steps, quality)

    records = [measure(0, model, [])]
    for k in range(1, rounds + 1):
        round_config = stage_config(config, k, rounds, seed=config.seed + k - 1, desc=config.desc)
        result = _reflow(records[-1].model, n_pairs=n_pairs, steps=steps, solver=solver, labels=None, shape=shape,
                         config=round_config)
        records.append(measure(k, result.ema_model, result.losses))
    return records
