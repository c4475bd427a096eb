"""ODE solvers for dx/dt = v(x, t), counting every evaluation of v (NFE).

Fixed-grid methods (steps of equal size over `t_span`):

| method   | order | evaluations per step |
|----------|-------|----------------------|
| euler    | 1     | 1 |
| midpoint | 2     | 2 |
| heun     | 2     | 2 |
| rk4      | 4     | 4 |

and `dopri5`, the adaptive Dormand–Prince 5(4) pair from torchdiffeq, controlled by atol/rtol.
Velocity callables are `v(x, t)` with x of shape [B, ...] and t of shape [B]. Integrating
backwards (t_span=(1, 0)) uses the same code with negative steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ._checks import check_positive_int

__all__ = ["Trajectory", "integrate", "sample", "euler", "FIXED_METHODS", "METHODS"]

Velocity = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Trajectory:
    """States of an integration: xs[k] is the state at time ts[k]."""

    ts: Tensor  # [K]
    xs: Tensor  # [K, B, ...]
    nfe: int  # evaluations of v actually made

    @property
    def x(self) -> Tensor:
        """The final state, [B, ...]."""
        return self.xs[-1]


class _Counted:
    """Wraps v(x, t) so that every evaluation is counted and t arrives with shape [B]."""

    def __init__(self, v: Velocity, batch: int):
        self.v, self.batch, self.nfe = v, batch, 0

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        self.nfe += 1
        return self.v(x, t.expand(self.batch))


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
    v: Velocity,
    x_0: Tensor,
    *,
    steps: int | None = None,
    method: str = "euler",
    t_span: tuple[float, float] = (0.0, 1.0),
    keep_path: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    grad: bool = False,
) -> Trajectory:
    """Solve dx/dt = v(x, t) from x(t_span[0]) = x_0 to t_span[1].

    Fixed-grid methods need `steps`; `dopri5` chooses its own steps (then `steps`, if given, only
    sets how many evenly spaced states `keep_path` records). Without `keep_path` the trajectory
    holds the start and the end. Runs under `torch.no_grad()` unless `grad=True`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; accepted: {', '.join(METHODS)}")
    if method != "dopri5" or steps is not None:
        if steps is None:
            raise ValueError(f"method {method!r} needs steps (a positive integer)")
        check_positive_int(steps, "steps")
    t0, t1 = (float(t_span[0]), float(t_span[1]))
    if not (0.0 <= t0 <= 1.0 and 0.0 <= t1 <= 1.0) or t0 == t1:
        raise ValueError(f"t_span must be two different times in [0, 1], got {t_span!r}")
    if x_0.ndim < 1 or x_0.shape[0] == 0:
        raise ValueError(f"x_0 must be a non-empty batch [B, ...], got shape {list(x_0.shape)}")
    counted = _Counted(v, x_0.shape[0])
    with torch.set_grad_enabled(grad):
        if method == "dopri5":
            return _dopri5(counted, x_0, t0, t1, steps if keep_path else None, atol, rtol)
        ts = torch.linspace(t0, t1, steps + 1, dtype=x_0.dtype, device=x_0.device)  # [N + 1]
        if method == "euler":
            xs = euler(counted, x_0, ts, keep_path)
        else:
            step = _STEPPERS[method]
            x, xs = x_0, [x_0]
            for k in range(steps):
                x = step(counted, x, ts[k], ts[k + 1] - ts[k])
                if keep_path:
                    xs.append(x)
            if not keep_path:
                xs.append(x)
    if not keep_path:
        ts = ts[[0, -1]]
    return Trajectory(ts=ts, xs=torch.stack(xs), nfe=counted.nfe)


def _dopri5(v: _Counted, x_0: Tensor, t0: float, t1: float, points: int | None, atol: float, rtol: float):
    from torchdiffeq import odeint

    n = 1 if points is None else points
    ts = torch.linspace(t0, t1, n + 1, dtype=x_0.dtype, device=x_0.device)  # [n + 1]
    xs = odeint(lambda t, x: v(x, t), x_0, ts, method="dopri5", atol=atol, rtol=rtol)  # [n + 1, B, ...]
    return Trajectory(ts=ts, xs=xs, nfe=v.nfe)


def sample(model: Velocity, x_0: Tensor, **kwargs) -> Tensor:
    """Integrate `model` from noise x_0 at t = 0 to t = 1 and return the end point [B, ...].

    Keyword arguments are those of `integrate`; the default is 100 Euler steps.
    """
    kwargs.setdefault("method", "euler")
    if kwargs["method"] != "dopri5":
        kwargs.setdefault("steps", 100)
    return integrate(model, x_0, **kwargs).x
