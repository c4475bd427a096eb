"""Sinusoidal embedding of the time t in [0, 1]."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["TimeEmbedding"]


class TimeEmbedding(nn.Module):
    """t [B] -> [B, dim]: sines and cosines at geometrically spaced frequencies, 1 .. max_freq.

    t lives in [0, 1] here, so frequencies stay low (max 20 rad per unit time by default): the
    diffusion habit of embedding t * 1000 makes a learned field oscillate in t, and then no
    fixed-step solver shows its order until the steps resolve those oscillations.
    """

    def __init__(self, dim: int = 64, max_freq: float = 20.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"time embedding dim must be even, got {dim}")
        half = dim // 2
        freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), half))  # [dim / 2]
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        angles = t.to(self.freqs.dtype)[:, None] * self.freqs[None, :]  # [B, dim / 2]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # [B, dim]
