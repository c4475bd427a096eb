"""Stochastic sampling from a velocity model: the SDE with the flow's marginals (Euler–Maruyama).

A velocity field v(x, t) trained on the linear path (noise x_0 ~ N(0, I) at t = 0, data at t = 1)
transports p_0 to p_1 through the marginals p_t. For any diffusion coefficient g(t) >= 0 the SDE

    dX = [v(X, t) + (g(t)^2 / 2) ∇ log p_t(X)] dt + g(t) dW

has the same marginals p_t (its Fokker–Planck equation reduces to the continuity equation of v).
The score is not a second network: on the linear Gaussian path it is affine in v and x,
∇ log p_t(x) = -(x - t v) / (1 - t) (`convert.velocity_to_score`), so one evaluation of v per step
gives both terms. g = 0 is the ODE (Euler); larger g injects more noise and corrects more
strongly towards the marginals, which can repair errors of an imperfect v at the price of
more steps.

The score divides by 1 - t: it is singular at t = 1. `eps` clamps 1 - t below (as in `convert`),
and a diffusion that vanishes at t = 1 (e.g. `diffusion=lambda t: (1 - t).sqrt()`) keeps the
correction g^2 / (2 (1 - t)) bounded. With a constant g the last step still adds noise of variance
g^2 dt, an O(dt) error like the rest of Euler–Maruyama.

Only the linear path with a standard normal source is supported (that is what the score
conversion assumes).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ._checks import check_positive_int
from ._fields import CountedField, as_batch, as_conditions, check_finite, check_signature
from .convert import DEFAULT_EPS, velocity_to_score
from .paths import expand_time
from .solvers import Trajectory

__all__ = ["sde_drift", "sde_sample"]

Diffusion = float | Callable[[Tensor], Tensor]


def _g(diffusion: Diffusion, t: Tensor) -> Tensor:
    """g(t) as a tensor [B] for times t [B]."""
    if callable(diffusion):
        g = torch.as_tensor(diffusion(t), dtype=t.dtype, device=t.device)
        g = g.expand(t.shape) if g.ndim == 0 else g
        if g.shape != t.shape or bool((g < 0).any()) or not bool(torch.isfinite(g).all()):
            raise ValueError(f"diffusion(t) must return finite values >= 0, a number or shape {list(t.shape)}, got {g}")
        return g
    return torch.full_like(t, float(diffusion))


def sde_drift(v: Tensor, x: Tensor, t: Tensor, g: Tensor, *, eps: float = DEFAULT_EPS) -> Tensor:
    """The drift v + (g^2 / 2) ∇ log p_t(x) [B, ...] from a velocity v at (x, t), with g of shape [B]."""
    score = velocity_to_score(v, x, t, eps=eps)  # [B, ...]
    return v + 0.5 * expand_time(g, x) ** 2 * score


def _check(diffusion: Diffusion, steps: int | None, ts) -> Tensor | None:
    if not callable(diffusion) and (
        isinstance(diffusion, bool) or not isinstance(diffusion, (int, float)) or not math.isfinite(diffusion) or diffusion < 0
    ):
        raise ValueError(f"diffusion must be a number >= 0 or a callable g(t [B]) -> [B], got {diffusion!r}")
    if ts is None:
        return None
    grid = torch.as_tensor(ts, dtype=torch.float64).detach().cpu()
    diffs = grid[1:] - grid[:-1]
    if grid.ndim != 1 or len(grid) < 2 or grid.min() < 0 or grid.max() > 1 or not bool((diffs > 0).all()):
        raise ValueError(f"ts must be a strictly increasing grid of at least 2 times in [0, 1], got {grid.tolist()}")
    if steps is not None and steps != len(grid) - 1:
        raise ValueError(f"steps={steps!r} disagrees with ts, a grid of {len(grid) - 1} steps; give one of them")
    return grid


def sde_sample(
    v: Callable[..., Tensor],
    x_0: Tensor,
    *,
    steps: int | None = None,
    ts: Tensor | Sequence[float] | None = None,
    diffusion: Diffusion = 1.0,
    eps: float = DEFAULT_EPS,
    generator: torch.Generator | None = None,
    keep_path: bool = False,
    **cond: Any,
) -> Trajectory:
    """Euler–Maruyama for dX = [v + (g^2/2) ∇ log p_t] dt + g dW from noise x_0 [B, ...] at t = 0.

    The time grid is `steps` equal steps over [0, 1] (default 100) or `ts` (increasing, in [0, 1];
    it may stop early, e.g. [0, ..., 0.5] samples p_0.5). `diffusion` is g: a number or a
    callable g(t [B]) -> [B]; 0 gives the Euler ODE. Noise comes from `generator` (or torch's
    global one); keyword conditions go to every call v(x, t, **cond). Returns the Trajectory
    (states at every grid time with `keep_path`, else start and end; nfe = one per step).
    """
    grid = _check(diffusion, steps, ts)
    check_signature(v)
    x = as_batch(x_0, v)
    if grid is None:
        grid = torch.linspace(0.0, 1.0, check_positive_int(steps or 100, "steps") + 1, dtype=torch.float64)
    field = CountedField(v, x.shape[0], as_conditions(cond, x))
    grid = grid.to(dtype=x.dtype, device=x.device)  # [K + 1]
    xs = [x]
    with torch.no_grad():
        for k in range(len(grid) - 1):
            t, dt = grid[k].expand(x.shape[0]), grid[k + 1] - grid[k]  # [B], scalar
            g = _g(diffusion, t)  # [B]
            drift = sde_drift(field(x, t), x, t, g, eps=eps)  # [B, ...]
            where = x.device if generator is None else generator.device
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=where).to(x.device)  # [B, ...]
            x = x + dt * drift + expand_time(g, x) * torch.sqrt(dt) * noise
            if keep_path:
                xs.append(x)
    check_finite(x, "the end state of the SDE")
    return Trajectory(ts=grid if keep_path else grid[[0, -1]], xs=torch.stack(xs if keep_path else [xs[0], x]), nfe=field.nfe)
