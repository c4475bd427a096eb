"""The conditional flow-matching loss."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ._checks import check_time
from ._fields import as_conditions
from .paths import BrownianBridgePath, GaussianPath, LinearPath
from .timesteps import TimeSampler

__all__ = ["cfm_loss"]

_LINEAR = LinearPath()


def cfm_loss(
    model: Callable[..., Tensor],
    x_1: Tensor,
    *,
    noise_fn: Callable[[Tensor], Tensor] = torch.randn_like,
    x_0: Tensor | None = None,
    path: GaussianPath | BrownianBridgePath | None = None,
    coupling: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
    t_sampler: TimeSampler | None = None,
    weight: Callable[[Tensor], Tensor] | None = None,
    **cond: Any,
) -> Tensor:
    """E || model(x_t, t, **cond) - u_t ||^2 over a batch of data x_1 of shape [B, ...].

    With the defaults: x_0 = noise_fn(x_1), t ~ U(0, 1) per sample, x_t = (1 - t) x_0 + t x_1,
    target u_t = x_1 - x_0, and the mean squared error. `x_0` gives the source samples directly
    (data-to-data translation: x_0 from one distribution, x_1 from another; then not noise_fn).
    `coupling` re-pairs source and data (e.g. `couplings.exact_ot`; the data keep their order, so
    conditions stay with their x_1), `path` changes the interpolation (`BrownianBridgePath` for
    Schrödinger-bridge CFM), `t_sampler` the time density, and `weight(t)` multiplies each
    sample's squared error before averaging. Keyword conditions (y=labels, ...) are passed to
    the model unchanged.
    """
    if not isinstance(x_1, Tensor) or x_1.ndim < 2 or x_1.shape[0] == 0:
        raise ValueError(f"x_1 must be a non-empty batch of shape [B, ...], got {list(getattr(x_1, 'shape', []))}")
    x_0 = _source(x_1, x_0, noise_fn)  # [B, ...]
    if coupling is not None:
        x_0, x_1 = coupling(x_0, x_1)
    batch = x_1.shape[0]
    if t_sampler is None:
        t = torch.rand(batch, device=x_1.device, dtype=x_1.dtype)  # [B]
    else:
        t = t_sampler(batch, device=x_1.device).to(x_1.dtype)  # [B]
        check_time(t, batch, "t_sampler's draw")
    x_t, u_t = (path or _LINEAR).interpolate(x_0, x_1, t)  # [B, ...] each
    v = model(x_t, t, **as_conditions(cond, x_1))  # [B, ...]
    if not isinstance(v, Tensor) or v.shape != u_t.shape:
        got = list(v.shape) if isinstance(v, Tensor) else type(v).__name__
        raise ValueError(f"model output has shape {got}, expected {list(u_t.shape)} (same as x_1)")
    if weight is None:
        return torch.mean((v - u_t) ** 2)
    per_sample = ((v - u_t) ** 2).flatten(1).mean(dim=1)  # [B]
    return torch.mean(weight(t) * per_sample)


def _source(x_1: Tensor, x_0: Tensor | None, noise_fn: Callable[[Tensor], Tensor]) -> Tensor:
    """The source batch [B, ...]: x_0 as given (checked), else noise_fn(x_1)."""
    if x_0 is not None and noise_fn is not torch.randn_like:
        raise ValueError("give the source either as samples x_0= or as noise_fn=, not both")
    what = "x_0" if x_0 is not None else "noise_fn"
    x_0 = noise_fn(x_1) if x_0 is None else x_0
    if not isinstance(x_0, Tensor) or x_0.shape != x_1.shape:
        got = list(x_0.shape) if isinstance(x_0, Tensor) else type(x_0).__name__
        raise ValueError(f"{what} gave shape {got}, expected {list(x_1.shape)} (same as x_1)")
    return x_0.to(dtype=x_1.dtype, device=x_1.device)
