"""Closed-form flows for a Gaussian-mixture data distribution under the linear path.

Data x_1 ~ sum_k w_k N(mu_k, s_k^2 I), noise x_0 ~ N(0, I), x_t = t x_1 + (1 - t) x_0. Then

    p_t = sum_k w_k N(t mu_k, (t^2 s_k^2 + (1 - t)^2) I),

and for each component the pair (x_1, x_t) is jointly Gaussian, so the marginal velocity
u_t(x) = E[x_1 - x_0 | x_t = x] and the score ∇ log p_t(x) are exact posterior averages over
components. This is the test oracle of the toolkit and the teaching reference of the course.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .data.toy import mixture_parameters

__all__ = ["GaussianMixture", "toy_mixture"]


class GaussianMixture:
    """A mixture of isotropic Gaussians in `dim` dimensions (computations in float64)."""

    def __init__(self, means, stds, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float64)  # [K, D]
        if self.means.ndim != 2:
            raise ValueError(f"means must have shape [K, D], got {list(self.means.shape)}")
        k = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).reshape(-1).expand(k).clone()  # [K]
        if (self.stds <= 0).any():
            raise ValueError(f"stds must be > 0, got {self.stds.tolist()}")
        w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (k,) or (w < 0).any() or not math.isclose(float(w.sum()), 1.0, rel_tol=1e-9):
            raise ValueError(f"weights must be {k} non-negative numbers summing to 1, got {w.tolist()}")
        self.weights = w
        self.dim = self.means.shape[1]

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # [n]
        noise = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return (self.means[idx] + self.stds[idx, None] * noise).float()  # [n, D]

    def _components(self, x: Tensor, t: Tensor):
        """Per-component means/variances of p_t and the posterior responsibilities at x."""
        x = x.double()  # [B, D]
        t = t.double().reshape(-1, 1)  # [B, 1]
        mean = t[:, :, None] * self.means.T[None]  # [B, D, K]   t mu_k
        var = t**2 * self.stds[None] ** 2 + (1 - t) ** 2  # [B, K]
        diff = x[:, :, None] - mean  # [B, D, K]
        log_n = -0.5 * (diff**2).sum(1) / var - 0.5 * self.dim * torch.log(2 * math.pi * var)  # [B, K]
        log_joint = torch.log(self.weights)[None] + log_n  # [B, K]
        log_p = torch.logsumexp(log_joint, dim=1)  # [B]
        resp = torch.exp(log_joint - log_p[:, None])  # [B, K]
        return x, t, diff, var, resp, log_p

    def log_prob(self, x: Tensor, t: Tensor) -> Tensor:
        """log p_t(x) for x [B, D] and t [B]."""
        return self._components(x, t)[5]

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        """∇_x log p_t(x), [B, D]."""
        _, _, diff, var, resp, _ = self._components(x, t)
        return (resp[:, None, :] * (-diff / var[:, None, :])).sum(-1)

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """The marginal velocity u_t(x) = E[x_1 - x_0 | x_t = x], [B, D]."""
        x, t, diff, var, resp, _ = self._components(x, t)
        s2 = self.stds[None, None, :] ** 2  # [1, 1, K]
        tt = t[:, :, None]  # [B, 1, 1]
        v = var[:, None, :]  # [B, 1, K]
        e_x1 = self.means.T[None] + tt * s2 / v * diff  # [B, D, K]  E[x_1 | x_t, k]
        e_x0 = (1 - tt) / v * diff  # [B, D, K]  E[x_0 | x_t, k]
        return (resp[:, None, :] * (e_x1 - e_x0)).sum(-1)

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        """The oracle as a velocity field v(x, t), in x's dtype."""
        return self.velocity(x, t).to(x.dtype)


def toy_mixture(name: str) -> GaussianMixture:
    """The toy dataset `name` ("two_clusters" or "8gaussians", `data.toy`) as a GaussianMixture:
    its exact density, score and marginal velocity, from the same centres and std as its draws."""
    centres, std = mixture_parameters(name, torch.float64)
    return GaussianMixture(centres, std)
