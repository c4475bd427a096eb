"""A DDPM / DDIM baseline (ε-prediction), for like-for-like comparisons with flow matching.

Same networks (`models.MLP`, `models.ConvNet`), same data, same training loop conventions as
`training.train`; only the path, the regression target and the samplers differ.

Conventions: the one place where diffusion's own indexing is defined
---------------------------------------------------------------------
Diffusion counts the other way round from flow time. In this module the DDPM index k runs from
k = 0 (data) to k = T (almost pure noise), and x_k is the state after k noising steps:

    x_k = sqrt(ᾱ_k) x_data + sqrt(1 - ᾱ_k) ε,   ε ~ N(0, I),   ᾱ_k = prod_{i <= k} (1 - β_i),  ᾱ_0 = 1.

The diffusion papers write x_0 for the data; here it is `x_data`, because everywhere else in the
toolkit x_0 is the noise. The index k meets the toolkit's time axis (noise at t = 0, data at
t = 1) in two ways:

- **Network input.** The ε-network is called as `model(x_k, t_net)` with t_net = 1 - k / T, so
  k = T (noise) is t_net = 0 and k = 0 (data) is t_net = 1: the range and direction the time
  embedding sees for a flow. `network_time(k, T)` computes it.
- **Equivalent flow time.** Dividing x_k by c_k = sqrt(ᾱ_k) + sqrt(1 - ᾱ_k) gives exactly the
  linear-path state x_t = t x_data + (1 - t) ε at t_k = sqrt(ᾱ_k) / c_k, with the *same* ε:
  both have the signal-to-noise ratio ᾱ_k / (1 - ᾱ_k) = (t_k / (1 - t_k))^2. So the DDPM
  (variance-preserving) marginals are the linear path's marginals, re-timed and rescaled by c_k;
  ε-prediction at step k is the linear path's noise prediction: ε̂(x_k) = E[x_0 | x_t = x_k / c_k]
  at t = t_k.
  `NoiseSchedule.flow_time(k)` and `NoiseSchedule.flow_scale(k)` give t_k and c_k;
  σ_k = 1 - t_k in the diffusers convention (`timesteps.t_to_sigma`). The score of the DDPM
  marginal is ∇ log p_k(x) = ∇ log p^lin_{t_k}(x / c_k) / c_k, and the exact ε-predictor is
  ε̂(x_k) = E[ε | x_k] = -sqrt(1 - ᾱ_k) ∇ log p_k(x_k) (Tweedie), which the tests build from
  `oracles.GaussianMixture`.

Schedules (float64 tensors of length T; entry i belongs to step k = i + 1):

- `linear` (Ho et al. 2020): β_k evenly spaced from 1e-4 to 0.02 at T = 1000; for other T both
  ends are multiplied by 1000 / T, which keeps Σβ, and so ᾱ_T, about the same.
- `cosine` (Nichol & Dhariwal 2021): ᾱ_k = f(k) / f(0) with f(k) = cos²(π/2 · (k/T + s) / (1 + s)),
  s = 0.008; β_k = 1 - ᾱ_k / ᾱ_{k-1} is capped at 0.999 and ᾱ is then the running product of
  1 - β (the cap only acts at k = T, where f(T) = 0).

Neither reaches pure noise: ᾱ_T ≈ 4e-5 (linear, T = 1000) and ≈ 2e-9 (cosine, because of the
cap). Samplers start from x_T ~ N(0, I) anyway, as DDPM does. The cosine schedule's tiny ᾱ_T
makes the first steps divide the network's ε error by sqrt(ᾱ_T): with an imperfect network,
sample it with the full T ancestral steps, or pass `clip` (a bound on the predicted data).

Samplers run on an evenly spaced sub-grid k_i = round(i T / steps), i = steps .. 0, call the
network once per step (NFE = steps) and return a `DiffusionTrajectory`. `ddpm_sample` is
ancestral sampling (with steps < T on the respaced chain, β' = 1 - ᾱ_k / ᾱ_k'); `ddim_sample`
is DDIM (Song et al. 2021), deterministic at eta = 0 and equal to ancestral sampling with the
posterior variance at eta = 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int
from .loop import BASELINE_DEFAULTS, configure_steps
from .solvers import Trajectory
from .training import (
    TrainConfig,
    TrainResult,
    check_label_dropout,
    check_model,
    data_source,
    drop_labels,
    run,
)

__all__ = [
    "NoiseSchedule",
    "SCHEDULES",
    "linear_schedule",
    "cosine_schedule",
    "make_schedule",
    "network_time",
    "q_sample",
    "ddpm_loss",
    "train_ddpm",
    "DiffusionTrajectory",
    "ddpm_sample",
    "ddim_sample",
]

EpsModel = Callable[..., Tensor]  # model(x_k [B, ...], t_net [B][, y [B]]) -> ε̂ [B, ...]

SCHEDULES = ("linear", "cosine")
MAX_T = 100_000
#: `train_ddpm`'s defaults where they differ from `TrainConfig`'s (no config= given)
DDPM_TRAINING = {**BASELINE_DEFAULTS, "desc": "training DDPM"}


@dataclass(frozen=True)
class NoiseSchedule:
    """A DDPM noise schedule. Entry i of each tensor belongs to step k = i + 1 (k = 1..T)."""

    name: str
    betas: Tensor  # [T] float64, β_k
    alphas: Tensor  # [T] float64, α_k = 1 - β_k
    alphas_cumprod: Tensor  # [T] float64, ᾱ_k = prod_{i <= k} α_i

    @property
    def T(self) -> int:
        """The number of noising steps."""
        return int(self.betas.shape[0])

    def _k(self, k: Tensor | int) -> Tensor:
        k = torch.as_tensor(k)
        if k.is_floating_point() or k.is_complex() or k.dtype == torch.bool:
            raise ValueError(f"k must be integer step indices in 0..{self.T}, got dtype {k.dtype}")
        if k.numel() and (int(k.min()) < 0 or int(k.max()) > self.T):
            raise ValueError(f"k must lie in 0..{self.T}, got values in [{int(k.min())}, {int(k.max())}]")
        return k.long()

    def alpha_bar(self, k: Tensor | int) -> Tensor:
        """ᾱ_k for integer k in 0..T (ᾱ_0 = 1), float64, shaped like k and on k's device."""
        k = self._k(k)
        padded = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])  # [T + 1]
        return padded[k.cpu()].to(k.device)

    def flow_scale(self, k: Tensor | int) -> Tensor:
        """c_k = sqrt(ᾱ_k) + sqrt(1 - ᾱ_k): x_k / c_k lies on the linear path (float64)."""
        a = self.alpha_bar(k)
        return a.sqrt() + (1 - a).sqrt()

    def flow_time(self, k: Tensor | int) -> Tensor:
        """t_k = sqrt(ᾱ_k) / c_k: the linear-path time with the same signal-to-noise ratio (float64)."""
        a = self.alpha_bar(k)
        return a.sqrt() / (a.sqrt() + (1 - a).sqrt())


def _check_T(T: object, low: int, why: str) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or not low <= T <= MAX_T:
        raise ValueError(f"T must be an integer in {low}..{MAX_T}{why}, got {T!r}")
    return T


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """β evenly spaced from beta_start to beta_end, both given for T = 1000 and scaled by 1000 / T."""
    if not 0 < beta_start <= beta_end:
        raise ValueError(f"need 0 < beta_start <= beta_end, got beta_start={beta_start!r}, beta_end={beta_end!r}")
    low = math.floor(1000 * beta_end) + 1  # the largest beta, beta_end * 1000 / T, must stay below 1
    _check_T(T, max(low, 2), f" for the linear schedule (its largest beta {beta_end} * 1000 / T must be < 1)")
    scale = 1000.0 / T
    betas = torch.linspace(scale * beta_start, scale * beta_end, T, dtype=torch.float64)  # [T]
    return _from_betas("linear", betas)


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """ᾱ_k = f(k) / f(0) with f(k) = cos²(π/2 (k/T + s) / (1 + s)); β capped at max_beta."""
    _check_T(T, 2, "")
    if not s > 0:
        raise ValueError(f"s must be > 0, got {s!r}")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta must be in (0, 1), got {max_beta!r}")
    k = torch.arange(T + 1, dtype=torch.float64)  # [T + 1]
    f = torch.cos(0.5 * math.pi * (k / T + s) / (1 + s)) ** 2  # [T + 1]
    alpha_bar = f / f[0]  # [T + 1], alpha_bar[0] = 1
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)  # [T]
    return _from_betas("cosine", betas)


def _from_betas(name: str, betas: Tensor) -> NoiseSchedule:
    alphas = 1 - betas  # [T]
    return NoiseSchedule(name=name, betas=betas, alphas=alphas, alphas_cumprod=torch.cumprod(alphas, dim=0))


def make_schedule(schedule: str | NoiseSchedule, T: int = 1000) -> NoiseSchedule:
    """A schedule by name ("linear" or "cosine") with T steps; a NoiseSchedule passes through."""
    if isinstance(schedule, NoiseSchedule):
        if schedule.T != T:
            raise ValueError(f"the schedule has T = {schedule.T} but T = {T!r} was asked for")
        return schedule
    check_choice(schedule, "schedule", SCHEDULES, " or a NoiseSchedule")
    return linear_schedule(T) if schedule == "linear" else cosine_schedule(T)


def network_time(k: Tensor, T: int) -> Tensor:
    """The network's time input for DDPM step k: t_net = 1 - k / T in [0, 1] (noise end at 0)."""
    return 1.0 - k.to(torch.float64) / T


def q_sample(
    schedule: NoiseSchedule,
    x_data: Tensor,
    k: Tensor,
    noise: Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw x_k ~ q(x_k | x_data) = N(sqrt(ᾱ_k) x_data, (1 - ᾱ_k) I); x_data [B, ...], k [B]."""
    if x_data.ndim < 1 or x_data.shape[0] == 0:
        raise ValueError(f"x_data must be a non-empty batch [B, ...], got shape {list(x_data.shape)}")
    if k.shape != (x_data.shape[0],):
        raise ValueError(f"k must have shape [{x_data.shape[0]}] (one step per sample), got {list(k.shape)}")
    if noise is None:
        noise = torch.randn(x_data.shape, generator=generator, dtype=x_data.dtype, device=x_data.device)
    elif noise.shape != x_data.shape:
        raise ValueError(f"noise has shape {list(noise.shape)}, expected {list(x_data.shape)} (same as x_data)")
    a = schedule.alpha_bar(k).to(x_data.dtype).reshape(-1, *([1] * (x_data.ndim - 1)))  # [B, 1, ...]
    return a.sqrt() * x_data + (1 - a).sqrt() * noise


def ddpm_loss(model: EpsModel, x_data: Tensor, schedule: NoiseSchedule) -> Tensor:
    """E || model(x_k, 1 - k/T) - ε ||² with k ~ U{1..T} and ε ~ N(0, I) per sample (Ho et al.'s L_simple).

    Draws from torch's global RNG, as `losses.cfm_loss` does.
    """
    if x_data.ndim < 2 or x_data.shape[0] == 0:
        raise ValueError(f"x_data must be a non-empty batch of shape [B, ...], got {list(x_data.shape)}")
    batch = x_data.shape[0]
    k = torch.randint(1, schedule.T + 1, (batch,), device=x_data.device)  # [B]
    eps = torch.randn_like(x_data)  # [B, ...]
    x_k = q_sample(schedule, x_data, k, eps)  # [B, ...]
    pred = model(x_k, network_time(k, schedule.T).to(x_data.dtype))  # [B, ...]
    if pred.shape != eps.shape:
        raise ValueError(f"model output has shape {list(pred.shape)}, expected {list(eps.shape)} (same as x_data)")
    return torch.mean((pred - eps) ** 2)


def train_ddpm(
    model: nn.Module,
    data: str | Tensor,
    *,
    schedule: str | NoiseSchedule = "linear",
    T: int = 1000,
    labels: Tensor | None = None,
    label_dropout: float = 0.0,
    config: TrainConfig | None = None,
    **options,
) -> TrainResult:
    """Train `model` as an ε-predictor model(x_k, t_net) with t_net = 1 - k / T (module docstring).

    Everything but the loss is `training.train`: `data` is a toy dataset name or a tensor [N, ...],
    `labels` [N] make the model class-conditional with the null class `model.num_classes` drawn with
    probability `label_dropout`. The training is `config` (a `TrainConfig`) or, without one, `steps`
    (required) at batch 256, lr 1e-3 and TrainConfig's other defaults (EMA 0.999 with the same
    warm-up, seed 0); every TrainConfig field can be given as a keyword (steps, batch_size, lr, ema,
    seed, device, amp, checkpoint, resume, callback, ...), as for `train`. The same `seed` gives
    bit-identical weights without touching torch's global RNG.
    """
    config = configure_steps("train_ddpm", config, DDPM_TRAINING, options)
    check_model(model)
    check_label_dropout(model, label_dropout)
    sched = make_schedule(schedule, T)

    def loss_fn(model: nn.Module, x_data: Tensor, **cond) -> Tensor:  # x_data [B, ...], cond e.g. y [B]
        if "y" in cond:
            cond = {**cond, "y": drop_labels(model, cond["y"], label_dropout)}
        eps_model = (lambda x, t: model(x, t, **cond)) if cond else model
        return ddpm_loss(eps_model, x_data, sched)

    return run(model, data_source(data, config, labels=labels), loss_fn, config)


@dataclass(frozen=True)
class DiffusionTrajectory:
    """States of a DDPM/DDIM sampler: xs[i] is the state x_k at step k = ks[i] (ks decreasing)."""

    ks: Tensor  # [K] long, from T down to 0
    ts: Tensor  # [K] float64, the equivalent flow time t_k of each state (NoiseSchedule.flow_time)
    scales: Tensor  # [K] float64, c_k: xs[i] / scales[i] lies on the linear path at time ts[i]
    xs: Tensor  # [K, B, ...] states on the DDPM scale
    nfe: int  # network evaluations made

    @property
    def x(self) -> Tensor:
        """The final state (k = 0: a sample of the data), [B, ...]."""
        return self.xs[-1]

    def as_flow(self) -> Trajectory:
        """The same states on the linear path (x_k / c_k at flow times t_k): to draw beside a flow."""
        scales = self.scales.to(self.xs.dtype).reshape(-1, *([1] * (self.xs.ndim - 1)))  # [K, 1, ...]
        return Trajectory(ts=self.ts.to(self.xs.dtype), xs=self.xs / scales, nfe=self.nfe)


def _grid(T: int, steps: int) -> list[int]:
    """Evenly spaced integer steps round(i T / steps) for i = steps .. 0 (strictly decreasing)."""
    return [(2 * T * i + steps) // (2 * steps) for i in range(steps, -1, -1)]


def _check_sampler_args(model: object, x_T: Tensor, schedule: object, steps: int | None, y, clip) -> int:
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0):
        raise ValueError(f"clip must be None or a number > 0, got {clip!r}")
    if not callable(model):
        raise ValueError(f"model must be callable as model(x, t) -> ε, got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(
            f"schedule must be a NoiseSchedule or 'linear' | 'cosine', got {type(schedule).__name__}"
        )
    if not isinstance(x_T, Tensor) or x_T.ndim < 1 or x_T.shape[0] == 0:
        raise ValueError(f"x_T must be a non-empty batch [B, ...], got shape {list(getattr(x_T, 'shape', []))}")
    if y is not None and (not isinstance(y, Tensor) or y.shape != (x_T.shape[0],)):
        raise ValueError(f"y must be a label tensor of shape [{x_T.shape[0]}], got {getattr(y, 'shape', y)!r}")
    return schedule.T if steps is None else check_positive_int(steps, "steps", upper=schedule.T)


def _predict_noise(
    model: EpsModel, x: Tensor, t_net: Tensor, y: Tensor | None, clip: float | None, a: float
) -> Tensor:
    """ε̂ [B, ...] at x [B, ...]; with `clip`, re-derived from the predicted data clamped to
    [-clip, clip] (a = ᾱ_k of this step)."""
    eps = model(x, t_net) if y is None else model(x, t_net, y)  # [B, ...]
    if eps.shape != x.shape:
        raise ValueError(f"model output has shape {list(eps.shape)}, expected {list(x.shape)} (same as x_T)")
    if clip is not None:
        x_hat = ((x - math.sqrt(1.0 - a) * eps) / math.sqrt(a)).clamp(-clip, clip)  # [B, ...]
        eps = (x - math.sqrt(a) * x_hat) / math.sqrt(1.0 - a)
    return eps


def _run(
    model: EpsModel,
    x_T: Tensor,
    schedule: NoiseSchedule,
    steps: int,
    y: Tensor | None,
    keep_path: bool,
    clip: float | None,
    update: Callable[[Tensor, Tensor, float, float], Tensor],
) -> DiffusionTrajectory:
    """The loop shared by both samplers: update(x_k, ε̂, ᾱ_k, ᾱ_k') -> x_k' for each grid step.

    With `clip`, the predicted data x̂ = (x_k - sqrt(1 - ᾱ_k) ε̂) / sqrt(ᾱ_k) is clamped to
    [-clip, clip] and ε̂ recomputed from it before the update.
    """
    ks = _grid(schedule.T, steps)  # [steps + 1], T .. 0
    abar = schedule.alpha_bar(torch.tensor(ks)).tolist()  # ᾱ at each grid point (python floats)
    batch = x_T.shape[0]
    x, xs, nfe = x_T, [x_T], 0
    with torch.no_grad():
        for i in range(steps):
            t_net = torch.full((batch,), 1.0 - ks[i] / schedule.T, dtype=x.dtype, device=x.device)  # [B]
            eps = _predict_noise(model, x, t_net, y, clip, abar[i])  # [B, ...]
            nfe += 1
            x = update(x, eps, abar[i], abar[i + 1])  # [B, ...] state at step ks[i + 1]
            if keep_path:
                xs.append(x)
    if not keep_path:
        xs.append(x)
        ks = [ks[0], ks[-1]]
    k = torch.tensor(ks)  # [K]
    return DiffusionTrajectory(
        ks=k, ts=schedule.flow_time(k), scales=schedule.flow_scale(k), xs=torch.stack(xs), nfe=nfe
    )


def ddpm_sample(
    model: EpsModel,
    x_T: Tensor,
    *,
    schedule: NoiseSchedule | str,
    steps: int | None = None,
    variance: str = "beta",
    y: Tensor | None = None,
    clip: float | None = None,
    keep_path: bool = False,
    generator: torch.Generator | None = None,
    T: int = 1000,
) -> DiffusionTrajectory:
    """Ancestral sampling (Ho et al. 2020) from x_T ~ N(0, I) [B, ...] down to k = 0.

    For each grid step k -> k' (all T single steps when `steps` is None or T) with
    β' = 1 - ᾱ_k / ᾱ_k':

        x_k' = (x_k - β' / sqrt(1 - ᾱ_k) ε̂) / sqrt(1 - β') + σ z,   z ~ N(0, I),

    where σ² = β' (`variance="beta"`) or the posterior variance β' (1 - ᾱ_k') / (1 - ᾱ_k)
    (`"posterior"`), and no noise is added on the last step. `y` [B] labels are passed as
    model(x, t, y); `generator` drives z; `clip` clamps the predicted data (see `ddim_sample`).
    NFE = steps.
    """
    if isinstance(schedule, str):  # a schedule's name, with T steps (as train_ddpm takes it)
        schedule = make_schedule(schedule, T)
    steps = _check_sampler_args(model, x_T, schedule, steps, y, clip)
    check_choice(variance, "variance", ("beta", "posterior"))

    def update(x: Tensor, eps: Tensor, a: float, a_next: float) -> Tensor:
        beta = 1.0 - a / a_next  # β' of the (respaced) step
        mean = (x - beta / math.sqrt(1.0 - a) * eps) / math.sqrt(1.0 - beta)  # [B, ...]
        if a_next == 1.0:  # the last step, k' = 0: return the mean
            return mean
        var = beta if variance == "beta" else beta * (1.0 - a_next) / (1.0 - a)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)  # [B, ...]
        return mean + math.sqrt(var) * z

    return _run(model, x_T, schedule, steps, y, keep_path, clip, update)


def ddim_sample(
    model: EpsModel,
    x_T: Tensor,
    *,
    schedule: NoiseSchedule | str,
    steps: int,
    eta: float = 0.0,
    y: Tensor | None = None,
    clip: float | None = None,
    keep_path: bool = False,
    generator: torch.Generator | None = None,
    T: int = 1000,
) -> DiffusionTrajectory:
    """DDIM (Song et al. 2021) on the evenly spaced sub-grid of `steps` steps.

    With x̂ = (x_k - sqrt(1 - ᾱ_k) ε̂) / sqrt(ᾱ_k) the predicted data and
    σ = eta sqrt((1 - ᾱ_k') / (1 - ᾱ_k)) sqrt(1 - ᾱ_k / ᾱ_k'):

        x_k' = sqrt(ᾱ_k') x̂ + sqrt(1 - ᾱ_k' - σ²) ε̂ + σ z.

    eta = 0 is deterministic (a discretisation of the probability-flow ODE); eta = 1 is ancestral
    sampling with the posterior variance. `eta` must be in [0, 1]. NFE = steps.

    `clip` (None, or a bound > 0 on |x̂|, as the image-diffusion samplers clip to [-1, 1]) clamps
    the predicted data and re-derives ε̂ from it. Without it, an imperfect network's ε error is
    multiplied by up to sqrt(ᾱ_k' / ᾱ_T) in the first step: about 640 for the cosine schedule with
    50 steps (ᾱ_T ≈ 2e-9), which ruins its samples, against about 25 for the linear one.
    """
    if isinstance(schedule, str):  # a schedule's name, with T steps (as train_ddpm takes it)
        schedule = make_schedule(schedule, T)
    steps = _check_sampler_args(model, x_T, schedule, steps, y, clip)
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")

    def update(x: Tensor, eps: Tensor, a: float, a_next: float) -> Tensor:
        x_data = (x - math.sqrt(1.0 - a) * eps) / math.sqrt(a)  # [B, ...] predicted data
        sigma = eta * math.sqrt((1.0 - a_next) / (1.0 - a) * (1.0 - a / a_next))
        x_next = math.sqrt(a_next) * x_data + math.sqrt(max(1.0 - a_next - sigma**2, 0.0)) * eps
        if sigma > 0:
            x_next = x_next + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x_next

    return _run(model, x_T, schedule, steps, y, keep_path, clip, update)
