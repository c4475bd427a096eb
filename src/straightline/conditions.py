"""Conditions of a velocity model: the null ("no condition") value and condition dropout.

A conditional model is called v(x, t, y=...). Two kinds of condition have a null value, which
trains the unconditional field alongside the conditional one (classifier-free guidance):

| model attribute      | y                                   | null value                   |
|----------------------|-------------------------------------|------------------------------|
| `num_classes = K`    | integer labels [B] in 0..K-1        | the label K (the null class) |
| `cond_dim = D`       | float vectors [B, D] ([B] if D = 1) | a row of NaN                 |

The toolkit's MLP, ConvNet and MMDiT take either (`num_classes=` or `cond_dim=`) and embed the
null value with a learned embedding. Masks are built on the condition's device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["condition_kind", "null_condition", "drop_condition"]


def condition_kind(model: object) -> str:
    """"class" for a model with num_classes, "vector" for one with cond_dim; else a ValueError."""
    n, d = getattr(model, "num_classes", None), getattr(model, "cond_dim", None)
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
        return "class"
    if isinstance(d, int) and not isinstance(d, bool) and d >= 1:
        return "vector"
    raise ValueError(
        "this needs a conditional model: one with num_classes (class labels) or cond_dim (vector conditions), "
        f"got num_classes={n!r}, cond_dim={d!r}"
    )


def null_condition(model: object, like: Tensor) -> Tensor:
    """The null condition shaped like the condition `like` ([B] labels or [B, D] vectors), on its device."""
    if condition_kind(model) == "class":
        return torch.full_like(like, model.num_classes)
    return torch.full_like(like, math.nan)


def drop_condition(model: object, y: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """y with each sample's condition replaced by the null value with probability p (CFG training).

    The mask is drawn on y's device (with `generator`, which must live there, if given).
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"the condition dropout probability must be in [0, 1), got {p!r}")
    kind = condition_kind(model)
    if not p:
        return y
    if kind == "vector" and not y.is_floating_point():
        raise ValueError(f"a model with cond_dim takes float conditions, got dtype {y.dtype}")
    drop = torch.rand(y.shape[0], device=y.device, generator=generator) < p  # [B]
    mask = drop.reshape(-1, *([1] * (y.ndim - 1)))  # [B, 1, ...]
    return torch.where(mask, null_condition(model, y), y)
