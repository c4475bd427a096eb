"""Sinusoidal embedding of the time t in [0, 1]."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["TimeEmbedding", "VectorCondition", "class_embedding", "condition_module", "embed_condition"]


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


class VectorCondition(nn.Module):
    """A continuous condition y [B, cond_dim] (or [B] when cond_dim = 1) -> [B, out].

    A two-layer MLP of y, and a learned null embedding used for rows that are all NaN: NaN is the
    "no condition" marker of vector conditions (the null class plays that role for class labels),
    which is what condition dropout writes (`conditions.drop_condition`) and what classifier-free
    guidance asks for. y = None means no condition for the whole batch.
    """

    def __init__(self, cond_dim: int, out: int):
        super().__init__()
        self.cond_dim = cond_dim
        self.proj = nn.Sequential(nn.Linear(cond_dim, out), nn.SiLU(), nn.Linear(out, out))
        self.null = nn.Parameter(torch.randn(out) * 0.02)  # [out]

    def forward(self, y: Tensor | None, batch: int) -> Tensor:
        if y is None:
            return self.null.expand(batch, -1)  # [B, out]
        if not isinstance(y, Tensor) or not y.is_floating_point():
            raise ValueError(f"a vector condition y must be a float tensor [B, {self.cond_dim}], got {_describe(y)}")
        if y.ndim == 1 and self.cond_dim == 1:
            y = y[:, None]  # [B, 1]
        if y.shape != (batch, self.cond_dim):
            raise ValueError(f"y must have shape [{batch}, {self.cond_dim}] (cond_dim={self.cond_dim}), got {list(y.shape)}")
        missing = torch.isnan(y)  # [B, cond_dim]
        null_rows = missing.all(dim=1)  # [B]
        if bool((missing.any(dim=1) & ~null_rows).any()):
            raise ValueError("a vector condition has NaN in some entries of a row: only a whole row of NaN means no condition")
        emb = self.proj(torch.where(missing, torch.zeros_like(y), y).to(self.null.dtype))  # [B, out]
        return torch.where(null_rows[:, None], self.null.to(emb.dtype), emb)


def _describe(y: object) -> str:
    return f"dtype {y.dtype}, shape {list(y.shape)}" if isinstance(y, Tensor) else type(y).__name__


def class_embedding(table: nn.Embedding, y: Tensor | None, num_classes: int, batch: int, device: torch.device) -> Tensor:
    """Embed class labels y [B] (0..num_classes; num_classes is the null class, also used for y = None)."""
    if y is None:
        y = torch.full((batch,), num_classes, dtype=torch.long, device=device)
    if not isinstance(y, Tensor) or y.is_floating_point() or y.dtype == torch.bool or y.shape != (batch,):
        raise ValueError(
            f"y must be integer class labels of shape [{batch}] (a model with cond_dim takes float vectors), got {_describe(y)}"
        )
    if batch and (int(y.min()) < 0 or int(y.max()) > num_classes):
        raise ValueError(
            f"y must lie in 0..{num_classes} ({num_classes} = null class), got values in [{int(y.min())}, {int(y.max())}]"
        )
    return table(y.long())  # [B, out]


def condition_module(num_classes: int | None, cond_dim: int | None, out: int) -> nn.Module | None:
    """The embedding of a model's condition: classes (with a null class), a vector, or none."""
    if num_classes is not None and cond_dim is not None:
        raise ValueError(f"give num_classes (class labels) or cond_dim (vector conditions), not both: {num_classes}, {cond_dim}")
    if num_classes is not None:
        return nn.Embedding(num_classes + 1, out)
    return VectorCondition(cond_dim, out) if cond_dim is not None else None


def embed_condition(module: nn.Module | None, y: Tensor | None, num_classes: int | None, batch: int, device, owner: str) -> Tensor | None:
    """[B, out] for the condition y through `module` (from `condition_module`); None if unconditional."""
    if module is None:
        if y is not None:
            raise ValueError(f"this {owner} is unconditional (num_classes=None, cond_dim=None) but a condition y was given")
        return None
    if isinstance(module, VectorCondition):
        return module(y, batch)
    return class_embedding(module, y, num_classes, batch, device)
