"""Time samplers, loss weights, the SD3 timestep shift, and the t <-> sigma convention adapter.

**Sampling t from a density is the same as weighting the loss.** For any per-time loss l(t),

    E_{t ~ pi}[ l(t) ] = ∫ pi(t) l(t) dt = E_{t ~ U(0,1)}[ pi(t) l(t) ],

so training with t ~ pi and training with uniform t and loss weight w(t) = pi(t) have the same
expected loss and the same expected gradient; they differ only in gradient variance (sampling
spends the batch where the weight is large). Conversely a weight w(t) with finite integral
Z = ∫ w corresponds to sampling t from w(t) / Z and scaling the loss by Z. `density_weight`
turns a sampler into its equivalent weight; `weighted_sampler` goes the other way numerically.

SD3 (Esser et al. 2024) samples t from a logit-normal density (best: m = 0, s = 1); it does not
use w(t) = 1 / (1 - t + eps), which is offered here as one weighting among several.

Conventions: this toolkit puts noise at t = 0 and data at t = 1. Libraries in the diffusion
tradition (diffusers, minRF) use sigma = 1 - t (noise at sigma = 1). `t_to_sigma`/`sigma_to_t`
and `velocity_from_sigma_model` are the one place where that is converted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import Tensor

__all__ = [
    "TimeSampler",
    "uniform",
    "logit_normal",
    "shift",
    "shifted",
    "inverse_one_minus_t",
    "density_weight",
    "t_to_sigma",
    "sigma_to_t",
    "velocity_from_sigma_model",
]


class TimeSampler(Protocol):
    def __call__(
        self, n: int, *, device: torch.device | str | None = None, generator: torch.Generator | None = None
    ) -> Tensor:  # [n] in [0, 1]
        ...

    def density(self, t: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class _Uniform:
    def __call__(self, n, *, device=None, generator=None):
        return torch.rand(n, device=device, generator=generator)  # [n]

    def density(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)


@dataclass(frozen=True)
class _LogitNormal:
    m: float
    s: float

    def __call__(self, n, *, device=None, generator=None):
        z = torch.randn(n, device=device, generator=generator)  # [n]
        return torch.sigmoid(self.m + self.s * z)

    def density(self, t: Tensor) -> Tensor:
        t = t.clamp(1e-12, 1 - 1e-12)
        logit = torch.log(t) - torch.log1p(-t)
        return torch.exp(-0.5 * ((logit - self.m) / self.s) ** 2) / (self.s * math.sqrt(2 * math.pi) * t * (1 - t))


@dataclass(frozen=True)
class _Shifted:
    base: TimeSampler
    s: float

    def __call__(self, n, *, device=None, generator=None):
        return shift(self.base(n, device=device, generator=generator), self.s)

    def density(self, t: Tensor) -> Tensor:
        # t = shift(r, s) is increasing in r; invert it (shift by 1/s) and apply the Jacobian
        r = shift(t, 1.0 / self.s)
        sigma = 1 - t
        drdt = self.s / (self.s - (self.s - 1) * sigma) ** 2
        return self.base.density(r) * drdt


def uniform() -> TimeSampler:
    """t ~ U(0, 1)."""
    return _Uniform()


def logit_normal(m: float = 0.0, s: float = 1.0) -> TimeSampler:
    """t = sigmoid(m + s z), z ~ N(0, 1): SD3's choice (m = 0, s = 1 was its best)."""
    if not s > 0:
        raise ValueError(f"s must be > 0, got {s!r}")
    return _LogitNormal(float(m), float(s))


def shift(t: Tensor, s: float) -> Tensor:
    """SD3's timestep shift, in this toolkit's convention (data at t = 1).

    With sigma = 1 - t (the noise level), the shifted noise level is
    sigma' = s sigma / (1 + (s - 1) sigma); s > 1 moves time towards the noise end, which SD3
    uses at higher resolutions. s = 1 is the identity; t = 0 and t = 1 are fixed points.
    """
    if not s > 0:
        raise ValueError(f"shift s must be > 0, got {s!r}")
    sigma = 1 - t
    return 1 - s * sigma / (1 + (s - 1) * sigma)


def shifted(base: TimeSampler, s: float) -> TimeSampler:
    """A sampler whose draws are `shift(base(), s)`."""
    if not s > 0:
        raise ValueError(f"shift s must be > 0, got {s!r}")
    return _Shifted(base, float(s))


def inverse_one_minus_t(eps: float = 1e-2) -> Callable[[Tensor], Tensor]:
    """The loss weight w(t) = 1 / (1 - t + eps): emphasises times near the data end."""
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")

    def weight(t: Tensor) -> Tensor:  # [B] -> [B]
        return 1.0 / (1.0 - t + eps)

    return weight


def density_weight(sampler: TimeSampler) -> Callable[[Tensor], Tensor]:
    """The loss weight equivalent to sampling t from `sampler`, when t is drawn uniformly."""
    return sampler.density


def t_to_sigma(t: Tensor) -> Tensor:
    """Flow time (data at 1) to noise level (noise at 1): sigma = 1 - t."""
    return 1 - t


def sigma_to_t(sigma: Tensor) -> Tensor:
    """Noise level (noise at 1) to flow time (data at 1): t = 1 - sigma."""
    return 1 - sigma


def velocity_from_sigma_model(f: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """Wrap a model in the sigma convention as a velocity field v(x, t) of this toolkit.

    A sigma-convention model predicts f(x, sigma) ≈ d x / d sigma = x_noise - x_data on
    x_sigma = (1 - sigma) x_data + sigma x_noise. Since sigma = 1 - t, d x / d t = -f(x, 1 - t).
    """

    def v(x: Tensor, t: Tensor) -> Tensor:
        return -f(x, t_to_sigma(t))

    return v
