"""The velocity network for flow matching on SO(3) (see `straightline.so3`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .embedding import TimeEmbedding

__all__ = ["SO3VelocityMLP"]


class SO3VelocityMLP(nn.Module):
    """v(R_t, t): rotations flattened [B, 9] and times [B] -> body-frame tangent vectors [B, 3].

    Accepts R as [B, 9] or [B, 3, 3]. The time embedding is concatenated with the 9 matrix
    entries, followed by `depth` SiLU layers of width `hidden` and a linear read-out to R^3.
    """

    def __init__(self, hidden: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        for name, value in (("hidden", hidden), ("depth", depth), ("time_dim", time_dim)):
            check_positive_int(value, name)
        self.config = {"hidden": hidden, "depth": depth, "time_dim": time_dim}
        self.embed = TimeEmbedding(time_dim)
        layers: list[nn.Module] = [nn.Linear(9 + time_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, 3))
        self.net = nn.Sequential(*layers)

    def forward(self, R: Tensor, t: Tensor) -> Tensor:
        if R.ndim not in (2, 3) or R[0].numel() != 9:
            raise ValueError(f"expected rotations of shape [B, 9] or [B, 3, 3], got {list(R.shape)}")
        if t.shape != (R.shape[0],):
            raise ValueError(f"t must have shape [{R.shape[0]}], got {list(t.shape)}")
        flat = R.reshape(R.shape[0], 9)  # [B, 9]
        return self.net(torch.cat([flat, self.embed(t).to(flat.dtype)], 1))  # [B, 3]
