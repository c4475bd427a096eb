"""ODE solvers for dx/dt = v(x, t), counting every evaluation of v (NFE).

Fixed-grid methods (steps of equal size over `t_span`, or any monotonic time grid `ts`):

| method   | order | evaluations per step |
|----------|-------|----------------------|
| euler    | 1     | 1 |
| midpoint | 2     | 2 |
| heun     | 2     | 2 |
| rk4      | 4     | 4 |

and `dopri5`, the adaptive Dormand–Prince 5(4) pair from torchdiffeq, controlled by atol/rtol.
Velocity callables are `v(x, t, **cond)` with x of shape [B, ...], t of shape [B] and optional
keyword conditions (class labels, vectors) passed through unchanged. Integrating
backwards (t_span=(1, 0)) uses the same code with negative steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ._checks import check_choice, check_positive_int
from ._fields import CountedField, as_batch, as_conditions, check_finite, check_signature, chunk_conditions

__all__ = ["Trajectory", "integrate", "sample", "euler", "FIXED_METHODS", "METHODS"]

Velocity = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Trajectory:
    """States of an integration: xs[k] is the state at time ts[k]."""

    ts: Tensor  # [K]
    xs: Tensor  # [K, B, ...]
    nfe: int  # evaluations of v made on the batch (with batch_size chunks: on one chunk)

    @property
    def x(self) -> Tensor:
        """The final state, [B, ...]."""
        return self.xs[-1]


def euler(v: Velocity, x_0: Tensor, ts: Tensor, keep_path: bool = False) -> list[Tensor]:
    """Forward Euler on the time grid ts [N + 1]: x <- x + (t_{k+1} - t_k) v(x, t_k)."""
    batch = x_0.shape[0]
    path = [x_0]
    # listing: euler-loop
    x = x_0  # [B, ...] noise at t = 0
    for k in range(len(ts) - 1):
        t = ts[k].expand(batch)  # [B]: every sample is at the same time
        dt = ts[k + 1] - ts[k]
        x = x + dt * v(x, t)  # one step along the velocity
    # end listing
        if keep_path:
            path.append(x)
    return path if keep_path else [x_0, x]


def _midpoint(v: Velocity, x: Tensor, t: Tensor, dt: Tensor) -> Tensor:
    half = v(x, t)
    return x + dt * v(x + 0.5 * dt * half, t + 0.5 * dt)


def _heun(v: Velocity, x: Tensor, t: Tensor, dt: Tensor) -> Tensor:
    k1 = v(x, t)
    k2 = v(x + dt * k1, t + dt)
    return x + 0.5 * dt * (k1 + k2)


def _rk4(v: Velocity, x: Tensor, t: Tensor, dt: Tensor) -> Tensor:
    k1 = v(x, t)
    k2 = v(x + 0.5 * dt * k1, t + 0.5 * dt)
    k3 = v(x + 0.5 * dt * k2, t + 0.5 * dt)
    k4 = v(x + dt * k3, t + dt)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


_STEPPERS = {"midpoint": _midpoint, "heun": _heun, "rk4": _rk4}
FIXED_METHODS = ("euler", "midpoint", "heun", "rk4")
METHODS = FIXED_METHODS + ("dopri5",)


def integrate(
    v: Callable[..., Tensor],
    x_0: Tensor,
    *,
    steps: int | None = None,
    method: str = "euler",
    t_span: tuple[float, float] | None = None,
    ts: Tensor | Sequence[float] | None = None,
    keep_path: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    grad: bool = False,
    batch_size: int | None = None,
    **cond: Any,
) -> Trajectory:
    """Solve dx/dt = v(x, t, **cond) from x(t_span[0]) = x_0 to t_span[1] (default (0, 1)).

    Fixed-grid methods need `steps` (equal steps over t_span) or a time grid `ts` [K + 1]
    (strictly increasing or decreasing times in [0, 1]; its ends must equal t_span when both are
    given). `dopri5` chooses its own steps (then `steps` or `ts`, if given, only set the states
    `keep_path` records). Without `keep_path` the trajectory holds the start and the end.
    Keyword conditions `cond` (e.g. y=labels) are passed to every call v(x, t, **cond).
    `batch_size` integrates the samples in chunks of that many (same result for fixed grids;
    `nfe` is then that of one chunk, the largest). Runs under `torch.no_grad()` unless `grad=True`.
    """
    check_choice(method, "method", METHODS)
    check_signature(v)
    x_0 = as_batch(x_0, v)
    cond = as_conditions(cond, x_0)
    grid = _grid(steps, method, t_span, ts, x_0)  # [K + 1] or None (dopri5 end points only)
    span = (float(grid[0]), float(grid[-1])) if grid is not None else _span(t_span)
    batch = x_0.shape[0]
    size = batch if batch_size is None else check_positive_int(batch_size, "batch_size")
    parts = []
    for start in range(0, batch, size):
        part_cond = chunk_conditions(cond, batch, start, start + size) if size < batch else cond
        with torch.set_grad_enabled(grad):
            parts.append(_solve(v, x_0[start : start + size], grid, span, method, keep_path, atol, rtol, part_cond))
    traj = parts[0] if len(parts) == 1 else _join(parts)
    check_finite(traj.x, f"the end state of the integration from t={span[0]:g} to t={span[1]:g}")
    return traj


def _span(t_span: tuple[float, float] | None) -> tuple[float, float]:
    t0, t1 = (0.0, 1.0) if t_span is None else (float(t_span[0]), float(t_span[1]))
    if not (0.0 <= t0 <= 1.0 and 0.0 <= t1 <= 1.0) or t0 == t1:
        raise ValueError(f"t_span must be two different times in [0, 1], got {t_span!r}")
    return t0, t1


def _grid(steps, method: str, t_span, ts, x_0: Tensor) -> Tensor | None:
    """The time grid [K + 1] in x_0's dtype and device, from `ts` or from `steps` over t_span."""
    if ts is None:
        t0, t1 = _span(t_span)
        if method == "dopri5" and steps is None:
            return None
        if steps is None:
            raise ValueError(f"method {method!r} needs steps (a positive integer) or a time grid ts")
        check_positive_int(steps, "steps")
        return torch.linspace(t0, t1, steps + 1, dtype=x_0.dtype, device=x_0.device)  # [N + 1]
    grid = torch.as_tensor(ts, dtype=torch.float64).detach().cpu()
    if grid.ndim != 1 or len(grid) < 2 or not bool(torch.isfinite(grid).all()):
        raise ValueError(f"ts must be a 1-D grid of at least 2 finite times, got {grid.tolist()}")
    diffs = grid[1:] - grid[:-1]
    if grid.min() < 0 or grid.max() > 1 or not (bool((diffs > 0).all()) or bool((diffs < 0).all())):
        raise ValueError(f"ts must be strictly increasing or strictly decreasing times in [0, 1], got {grid.tolist()}")
    if steps is not None and steps != len(grid) - 1:
        raise ValueError(f"steps={steps!r} disagrees with ts, a grid of {len(grid) - 1} steps; give one of them")
    if t_span is not None and (float(grid[0]), float(grid[-1])) != (float(t_span[0]), float(t_span[1])):
        raise ValueError(f"ts must span t_span={tuple(t_span)!r}: it runs from {float(grid[0]):g} to {float(grid[-1]):g}")
    return grid.to(dtype=x_0.dtype, device=x_0.device)


def _solve(v, x_0: Tensor, grid: Tensor | None, span, method: str, keep_path: bool, atol, rtol, cond) -> Trajectory:
    counted = CountedField(v, x_0.shape[0], cond)
    if method == "dopri5":
        return _dopri5(counted, x_0, span, grid if keep_path else None, atol, rtol)
    if method == "euler":
        xs = euler(counted, x_0, grid, keep_path)
    else:
        step = _STEPPERS[method]
        x, xs = x_0, [x_0]
        for k in range(len(grid) - 1):
            x = step(counted, x, grid[k], grid[k + 1] - grid[k])  # [B, ...]
            if keep_path:
                xs.append(x)
        if not keep_path:
            xs.append(x)
    return Trajectory(ts=grid if keep_path else grid[[0, -1]], xs=torch.stack(xs), nfe=counted.nfe)


def _join(parts: list[Trajectory]) -> Trajectory:
    """Chunks of one integration (same grid) joined along the batch: xs [K, B, ...]."""
    return Trajectory(ts=parts[0].ts, xs=torch.cat([p.xs for p in parts], dim=1), nfe=max(p.nfe for p in parts))


def _dopri5(v: CountedField, x_0: Tensor, span, grid: Tensor | None, atol: float, rtol: float) -> Trajectory:
    from torchdiffeq import odeint

    if grid is None:
        grid = torch.tensor(span, dtype=x_0.dtype, device=x_0.device)  # [2]
    xs = odeint(lambda t, x: v(x, t), x_0, grid, method="dopri5", atol=atol, rtol=rtol)  # [K + 1, B, ...]
    return Trajectory(ts=grid, xs=xs, nfe=v.nfe)


def sample(model: Callable[..., Tensor], x_0: Tensor, **kwargs: Any) -> Tensor:
    """Integrate `model` from noise x_0 at t = 0 to t = 1 and return the end point [B, ...].

    Keyword arguments are those of `integrate` (conditions such as y=labels included, passed on
    to model(x, t, **cond)); the default is 100 Euler steps. A grid `ts` must run from 0 to 1.
    """
    kwargs.setdefault("method", "euler")
    if kwargs.get("ts") is None:
        if kwargs["method"] != "dopri5":
            kwargs.setdefault("steps", 100)
    else:
        kwargs.setdefault("t_span", (0.0, 1.0))
    return integrate(model, x_0, **kwargs).x
