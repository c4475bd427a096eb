"""The conditional flow-matching loss."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._checks import check_time
from .paths import GaussianPath, LinearPath
from .timesteps import TimeSampler

__all__ = ["cfm_loss"]

_LINEAR = LinearPath()


def cfm_loss(
    model: Callable[[Tensor, Tensor], Tensor],
    x_1: Tensor,
    *,
    noise_fn: Callable[[Tensor], Tensor] = torch.randn_like,
    path: GaussianPath | None = None,
    coupling: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
    t_sampler: TimeSampler | None = None,
    weight: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """E || model(x_t, t) - u_t ||^2 over a batch of data x_1 of shape [B, ...].

    With the defaults: x_0 = noise_fn(x_1), t ~ U(0, 1) per sample, x_t = (1 - t) x_0 + t x_1,
    target u_t = x_1 - x_0, and the mean squared error. `coupling` re-pairs noise and data
    (e.g. `couplings.exact_ot`), `path` changes the interpolation, `t_sampler` the time density,
    and `weight(t)` multiplies each sample's squared error before averaging.
    """
    if x_1.ndim < 2 or x_1.shape[0] == 0:
        raise ValueError(f"x_1 must be a non-empty batch of shape [B, ...], got {list(x_1.shape)}")
    x_0 = noise_fn(x_1)  # [B, ...]
    if coupling is not None:
        x_0, x_1 = coupling(x_0, x_1)
    if x_0.shape != x_1.shape:
        raise ValueError(f"noise_fn returned shape {list(x_0.shape)}, expected {list(x_1.shape)} (same as x_1)")
    batch = x_1.shape[0]
    if t_sampler is None:
        t = torch.rand(batch, device=x_1.device, dtype=x_1.dtype)  # [B]
    else:
        t = t_sampler(batch, device=x_1.device).to(x_1.dtype)  # [B]
        check_time(t, batch, "t_sampler's draw")
    x_t, u_t = (path or _LINEAR).interpolate(x_0, x_1, t)  # [B, ...] each
    v = model(x_t, t)  # [B, ...]
    if v.shape != u_t.shape:
        raise ValueError(f"model output has shape {list(v.shape)}, expected {list(u_t.shape)} (same as x_1)")
    if weight is None:
        return torch.mean((v - u_t) ** 2)
    per_sample = ((v - u_t) ** 2).flatten(1).mean(dim=1)  # [B]
    return torch.mean(weight(t) * per_sample)
