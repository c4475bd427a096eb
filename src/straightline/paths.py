"""Probability paths between noise x_0 (t = 0) and data x_1 (t = 1).

Every path here is a Gaussian path x_t = alpha(t) x_1 + sigma(t) x_0 with conditional velocity
u_t = alpha'(t) x_1 + sigma'(t) x_0 (the time derivative of x_t for a fixed pair):

| path         | alpha(t)                 | sigma(t)                   |
|--------------|--------------------------|----------------------------|
| LinearPath   | t                        | 1 - t                      |
| CosinePath   | sin(pi t / 2)            | cos(pi t / 2)              |
| VPPath       | exp(-T(1 - t) / 2)       | sqrt(1 - alpha(t)^2)       |

where T(s) = beta_min s + (beta_max - beta_min) s^2 / 2 integrates the linear beta schedule of
the variance-preserving diffusion (Song et al. 2021) over diffusion time s = 1 - t. The VP path
starts at alpha(0) = exp(-T(1)/2) (about 0.0066 for the defaults), not exactly 0: diffusion never
reaches pure noise.

`BrownianBridgePath(sigma)` is the stochastic path of Schrödinger-bridge CFM (Tong et al. 2023):
the straight line plus Brownian-bridge noise, x_t = (1 - t) x_0 + t x_1 + sigma sqrt(t (1 - t)) eps.
It is not a GaussianPath of the table (its noise is drawn inside, not the source x_0).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_same_shape, check_time

__all__ = ["PathSample", "GaussianPath", "LinearPath", "CosinePath", "VPPath", "BrownianBridgePath", "expand_time"]


def expand_time(t: Tensor, like: Tensor) -> Tensor:
    """t of shape [B] viewed as [B, 1, ..., 1] so it broadcasts against `like` of shape [B, ...]."""
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1)))


@dataclass(frozen=True)
class PathSample:
    """A point on the conditional path of each pair, and the velocity there."""

    x_0: Tensor  # [B, ...] noise
    x_1: Tensor  # [B, ...] data
    t: Tensor  # [B]
    x_t: Tensor  # [B, ...]
    u_t: Tensor  # [B, ...] conditional velocity d x_t / dt, the regression target


class GaussianPath(ABC):
    """x_t = alpha(t) x_1 + sigma(t) x_0, for x_0 ~ N(0, I) noise and x_1 data."""

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def sigma(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def d_alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def d_sigma(self, t: Tensor) -> Tensor: ...

    def sample(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        """Interpolate each pair at its own time: x_0, x_1 of shape [B, ...], t of shape [B]."""
        check_same_shape(x_0, x_1)
        check_time(t, x_0.shape[0])
        x_t, u_t = self.interpolate(x_0, x_1, t)
        return PathSample(x_0=x_0, x_1=x_1, t=t, x_t=x_t, u_t=u_t)

    def interpolate(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(x_t, u_t) without argument checks: for callers that drew t themselves (the loss)."""
        tb = expand_time(t.to(x_0.dtype), x_0)  # [B, 1, ...]
        x_t = self.alpha(tb) * x_1 + self.sigma(tb) * x_0
        u_t = self.d_alpha(tb) * x_1 + self.d_sigma(tb) * x_0
        return x_t, u_t

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearPath(GaussianPath):
    """The straight line x_t = (1 - t) x_0 + t x_1 at constant velocity u_t = x_1 - x_0 (CondOT)."""

    def alpha(self, t: Tensor) -> Tensor:
        return t

    def sigma(self, t: Tensor) -> Tensor:
        return 1 - t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def interpolate(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        # the general formula written out: this is the path training uses by default
        tb = t.to(x_0.dtype).view(-1, *([1] * (x_0.ndim - 1)))  # [B, 1, ...]
        return x_0 + tb * (x_1 - x_0), x_1 - x_0


class CosinePath(GaussianPath):
    """x_t = cos(pi t / 2) x_0 + sin(pi t / 2) x_1: variance preserving, a quarter circle per pair."""

    def alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)


class VPPath(GaussianPath):
    """The variance-preserving diffusion path (linear beta schedule) written in flow time."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        if not 0 <= beta_min < beta_max:
            raise ValueError(f"need 0 <= beta_min < beta_max, got beta_min={beta_min}, beta_max={beta_max}")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def _integral(self, s: Tensor) -> Tensor:  # T(s) = ∫_0^s beta(r) dr
        return self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2

    def _beta(self, s: Tensor) -> Tensor:
        return self.beta_min + (self.beta_max - self.beta_min) * s

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(-0.5 * self._integral(1 - t))

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sqrt((1 - self.alpha(t) ** 2).clamp_min(0))

    def d_alpha(self, t: Tensor) -> Tensor:
        # d/dt exp(-T(1-t)/2) = exp(-T(1-t)/2) * beta(1-t) / 2
        return 0.5 * self._beta(1 - t) * self.alpha(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        a = self.alpha(t)
        s = self.sigma(t)
        # d/dt sqrt(1 - a^2) = -a a' / s; at t = 1, s = 0 and the limit is -inf: clamp to stay finite
        return -a * self.d_alpha(t) / s.clamp_min(1e-6)

    def __repr__(self) -> str:
        return f"VPPath(beta_min={self.beta_min}, beta_max={self.beta_max})"


class BrownianBridgePath:
    """Schrödinger-bridge CFM (Tong et al. 2023, "Improving and generalizing flow-based generative
    models with minibatch optimal transport", SB-CFM): a Brownian bridge of diffusion `sigma`
    between each pair,

        x_t = mu_t + sigma_t eps,  mu_t = (1 - t) x_0 + t x_1,  sigma_t = sigma sqrt(t (1 - t)),

    eps ~ N(0, I) drawn afresh, with the conditional velocity that generates this Gaussian path,

        u_t = sigma_t' / sigma_t (x_t - mu_t) + (x_1 - x_0) = (1 - 2t) / (2 t (1 - t)) (x_t - mu_t) + x_1 - x_0,

    which is d/dt of x_t for a fixed eps (u_t = mu_t' + sigma_t' eps, finite for 0 < t < 1: the
    ratio is evaluated as sigma_t' eps). Paired with the entropic coupling of regularisation 2 sigma^2
    (`couplings.sinkhorn(..., reg=2 * sigma**2)`) the learned flow has the marginals of the
    Schrödinger bridge between the two distributions; sigma = 0 is the plain linear path.
    """

    def __init__(self, sigma: float = 1.0):
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
            raise ValueError(f"sigma must be a finite number >= 0 (the bridge's noise level), got {sigma!r}")
        self.sigma = float(sigma)

    def std(self, t: Tensor) -> Tensor:
        """sigma_t = sigma sqrt(t (1 - t)), the bridge's standard deviation at t."""
        return self.sigma * torch.sqrt((t * (1 - t)).clamp_min(0))

    def interpolate(self, x_0: Tensor, x_1: Tensor, t: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(x_t, u_t) for pairs x_0, x_1 [B, ...] at t [B]; eps [B, ...] defaults to fresh N(0, I)."""
        eps = torch.randn_like(x_0) if eps is None else eps  # [B, ...]
        tb = expand_time(t.to(x_0.dtype), x_0)  # [B, 1, ...]
        root = torch.sqrt((tb * (1 - tb)).clamp_min(0))  # sqrt(t (1 - t))
        x_t = x_0 + tb * (x_1 - x_0) + self.sigma * root * eps
        # sigma_t' eps = sigma (1 - 2t) / (2 sqrt(t (1 - t))) eps, written so it stays finite at the ends
        d_std = self.sigma * (1 - 2 * tb) / (2 * root.clamp_min(1e-6))
        return x_t, (x_1 - x_0) + d_std * eps

    def sample(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        """Interpolate each pair at its own time: x_0, x_1 of shape [B, ...], t of shape [B]."""
        check_same_shape(x_0, x_1)
        check_time(t, x_0.shape[0])
        x_t, u_t = self.interpolate(x_0, x_1, t)
        return PathSample(x_0=x_0, x_1=x_1, t=t, x_t=x_t, u_t=u_t)

    def __repr__(self) -> str:
        return f"BrownianBridgePath(sigma={self.sigma})"
