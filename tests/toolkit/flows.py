"""Exact flows and evaluation helpers shared by the reflow and distillation tests."""

import math

import torch
from torch import nn

import straightline as sl
from straightline import metrics
from straightline.data import toy

N_EVAL = 1000


class StraightGaussian(nn.Module):
    """The exact CondOT field from N(0, I) to N(mu, s^2 I): every trajectory is a straight line,
    so Euler steps are exact.

    x_t = (1 + (s - 1) t) x_0 + t mu, so v(x, t) = mu + (s - 1)(x - t mu) / (1 + (s - 1) t).
    """

    def __init__(self, mu=(1.5, -0.5), s=0.5):
        super().__init__()
        self.dim = 2
        self.mu = nn.Parameter(torch.tensor(mu, dtype=torch.float64))  # [2]
        self.log_s = nn.Parameter(torch.tensor(math.log(s), dtype=torch.float64))

    def forward(self, x, t):
        a = torch.exp(self.log_s) - 1
        tb = t[:, None]  # [B, 1]
        return self.mu + a * (x - tb * self.mu) / (1 + a * tb)  # [B, 2]


def eval_noise(n=N_EVAL, seed=123):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def w2_at(model, steps, method="euler"):
    """W2 between `steps`-step samples of `model` from the fixed evaluation noise and 8gaussians."""
    samples = sl.sample(model, eval_noise(), steps=steps, method=method)
    return metrics.w2(samples, toy("8gaussians", N_EVAL, seed=77))
