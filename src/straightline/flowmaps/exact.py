"""The exact flow map of Gaussian data under the linear path: the closed-form reference of the flow-map tools.

Data x_1 ~ N(mean, std^2 I), noise x_0 ~ N(0, I), x_t = (1 - t) x_0 + t x_1. The marginal p_t is
N(t mean, sigma_t^2 I) with sigma_t^2 = t^2 std^2 + (1 - t)^2, and the marginal flow moves every
particle affinely: X_{s,t}(x) = t mean + (sigma_t / sigma_s)(x - s mean). Its average velocity,

    u(x, s, t) = mean + (x - s mean) [(s + t) std^2 + s + t - 2] / (sigma_s (sigma_s + sigma_t)),

is smooth through s = t, where it is the velocity v(x, s) = mean + (x - s mean)(s std^2 - (1 - s)) / sigma_s^2.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["GaussianFlowMap"]


class GaussianFlowMap(nn.Module):
    """u(x, s, t) of N(0, I) -> N(mean, std^2 I) in `dim` = len(mean) dimensions (float64 parameters).

    `mean` and `log_std` are parameters, so gradients of a loss with respect to them can be taken
    at the exact map (the exact map is one point of this two-parameter family). `velocity(x, t)`
    is the marginal velocity field, `map(x, s, t)` the flow map X_{s,t}(x).
    """

    def __init__(self, mean=(1.5, -0.5), std: float = 0.5):
        super().__init__()
        if not std > 0:
            raise ValueError(f"std must be > 0, got {std!r}")
        self.mean = nn.Parameter(torch.as_tensor(mean, dtype=torch.float64).reshape(-1).clone())  # [D]
        self.log_std = nn.Parameter(torch.tensor(math.log(std), dtype=torch.float64))
        self.dim = self.mean.shape[0]

    def sigma(self, t: Tensor) -> Tensor:
        """The standard deviation of p_t, [B]."""
        var = torch.exp(2 * self.log_std)
        return torch.sqrt(t**2 * var + (1 - t) ** 2)

    def forward(self, x: Tensor, s: Tensor, t: Tensor) -> Tensor:
        var = torch.exp(2 * self.log_std)
        sig_s, sig_t = self.sigma(s), self.sigma(t)  # [B] each
        rate = ((s + t) * var + s + t - 2) / (sig_s * (sig_s + sig_t))  # [B]
        mean = self.mean.to(x.dtype)
        return mean + (x - s[:, None] * mean) * rate[:, None].to(x.dtype)  # [B, D]

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """The marginal velocity v(x, t) = u(x, t, t), [B, D]."""
        return self(x, t, t)

    def map(self, x: Tensor, s: Tensor, t: Tensor) -> Tensor:
        """X_{s,t}(x) = t mean + (sigma_t / sigma_s)(x - s mean), [B, D]."""
        mean = self.mean.to(x.dtype)
        ratio = (self.sigma(t) / self.sigma(s)).to(x.dtype)  # [B]
        return t[:, None] * mean + ratio[:, None] * (x - s[:, None] * mean)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n data points x_1 ~ N(mean, std^2 I), float64, [n, D]."""
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return (self.mean + torch.exp(self.log_std) * z).detach()
