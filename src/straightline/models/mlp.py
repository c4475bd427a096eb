"""A multilayer perceptron velocity field for low-dimensional data."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .embedding import TimeEmbedding, condition_module, embed_condition

__all__ = ["MLP"]


def _layers(n_in: int, hidden: int, depth: int, n_out: int) -> nn.Sequential:
    """`depth` SiLU-activated linear layers of width `hidden`, then a linear output layer."""
    layers: list[nn.Module] = [nn.Linear(n_in, hidden), nn.SiLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.SiLU()]
    layers.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """v(x, t[, y]) for x of shape [B, ...] with `dim` numbers per sample and t of shape [B].

    The time embedding (and, with `num_classes` or `cond_dim`, a condition embedding) is
    concatenated with the flattened x, followed by `depth` hidden layers of width `hidden` with
    SiLU activations and a linear read-out to `dim` velocities, returned in x's shape. A
    class-conditional MLP (`num_classes`) takes labels y [B] and reserves label `num_classes` as
    the null class; a vector-conditional one (`cond_dim`) takes float y [B, cond_dim] and embeds
    rows of NaN with a learned null embedding (see `straightline.conditions`). Both see the null
    condition when y is None.
    """

    def __init__(
        self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 32,
        num_classes: int | None = None, cond_dim: int | None = None,
    ):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth), ("time_dim", time_dim)):
            check_positive_int(value, name)
        for name, value in (("num_classes", num_classes), ("cond_dim", cond_dim)):
            if value is not None:
                check_positive_int(value, name)
        self.config = {"dim": dim, "hidden": hidden, "depth": depth, "time_dim": time_dim}
        for name, value in (("num_classes", num_classes), ("cond_dim", cond_dim)):
            if value is not None:
                self.config[name] = value
        self.dim, self.num_classes, self.cond_dim = dim, num_classes, cond_dim
        self.embed = TimeEmbedding(time_dim)
        self.label = condition_module(num_classes, cond_dim, time_dim)
        extra = time_dim * (2 if self.label is not None else 1)
        self.net = _layers(dim + extra, hidden, depth, dim)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        if x.ndim < 2 or x[0].numel() != self.dim:
            raise ValueError(f"MLP expects x of shape [B, ...] with {self.dim} numbers per sample, got {list(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape [{x.shape[0]}], got {list(t.shape)}")
        flat = x.reshape(x.shape[0], self.dim)  # [B, dim]
        parts = [flat, self.embed(t).to(x.dtype)]  # [B, dim], [B, time_dim]
        cond = embed_condition(self.label, y, self.num_classes, x.shape[0], x.device, "MLP")  # [B, time_dim] or None
        if cond is not None:
            parts.append(cond.to(x.dtype))
        return self.net(torch.cat(parts, dim=1)).reshape(x.shape)  # [B, ...] like x
