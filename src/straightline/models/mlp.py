"""A multilayer perceptron velocity field for low-dimensional data."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .embedding import TimeEmbedding

__all__ = ["MLP"]


class MLP(nn.Module):
    """v(x, t[, y]) for x of shape [B, ...] with `dim` numbers per sample and t of shape [B].

    The time embedding (and, with `num_classes`, a label embedding) is concatenated with the
    flattened x, followed by `depth` hidden layers of width `hidden` with SiLU activations and a
    linear read-out to `dim` velocities, returned in x's shape. A class-conditional MLP reserves
    label `num_classes` as the null class, which it sees when y is None.
    """

    def __init__(self, dim: int = 2, hidden: int = 256, depth: int = 3, time_dim: int = 32, num_classes: int | None = None):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth), ("time_dim", time_dim)):
            check_positive_int(value, name)
        if num_classes is not None:
            check_positive_int(num_classes, "num_classes")
        self.config = {"dim": dim, "hidden": hidden, "depth": depth, "time_dim": time_dim}
        if num_classes is not None:
            self.config["num_classes"] = num_classes
        self.dim, self.num_classes = dim, num_classes
        self.embed = TimeEmbedding(time_dim)
        self.label = nn.Embedding(num_classes + 1, time_dim) if num_classes is not None else None
        extra = time_dim * (2 if num_classes is not None else 1)
        layers: list[nn.Module] = [nn.Linear(dim + extra, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        if x.ndim < 2 or x[0].numel() != self.dim:
            raise ValueError(f"MLP expects x of shape [B, ...] with {self.dim} numbers per sample, got {list(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape [{x.shape[0]}], got {list(t.shape)}")
        flat = x.reshape(x.shape[0], self.dim)  # [B, dim]
        parts = [flat, self.embed(t).to(x.dtype)]  # [B, dim], [B, time_dim]
        if self.label is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            parts.append(self.label(y).to(x.dtype))  # [B, time_dim]
        elif y is not None:
            raise ValueError("this MLP is unconditional (num_classes=None) but labels y were given")
        return self.net(torch.cat(parts, dim=1)).reshape(x.shape)  # [B, ...] like x
