"""A multilayer perceptron velocity field for low-dimensional data."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .embedding import TimeEmbedding

__all__ = ["MLP"]


class MLP(nn.Module):
    """v(x, t) for x of shape [B, dim] and t of shape [B].

    The time embedding is concatenated with x, followed by `depth` hidden layers of width
    `hidden` with SiLU activations and a linear read-out to `dim` velocities.
    """

    def __init__(self, dim: int = 2, hidden: int = 256, depth: int = 3, time_dim: int = 32):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth), ("time_dim", time_dim)):
            check_positive_int(value, name)
        self.config = {"dim": dim, "hidden": hidden, "depth": depth, "time_dim": time_dim}
        self.dim = dim
        self.embed = TimeEmbedding(time_dim)
        layers: list[nn.Module] = [nn.Linear(dim + time_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"MLP expects x of shape [B, {self.dim}], got {list(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape [{x.shape[0]}], got {list(t.shape)}")
        h = self.embed(t).to(x.dtype)  # [B, time_dim]
        return self.net(torch.cat([x, h], dim=1))  # [B, dim]
