"""Flow maps and average velocities: ground truth by integration, the MeanFlow target, sampling.

Conventions (the toolkit's): noise x_0 at t = 0, data x_1 at t = 1. A flow map takes a particle
from time s to time t >= s, X_{s,t}(x) = x + (t - s) u(x, s, t), where u is the average velocity
along the trajectory; a flow-map callable is u(x [B, ...], s [B], t [B]) -> [B, ...].
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import Tensor
from torch.func import jvp

from .._checks import check_choice, check_positive_int, check_time
from ..solvers import FIXED_METHODS, Trajectory

__all__ = [
    "FlowMap", "Velocity", "average_velocity", "meanflow_target", "meanflow_pair", "sample", "jump",
    "check_flow_map", "check_times", "check_batch", "per_sample",
]

FlowMap = Callable[[Tensor, Tensor, Tensor], Tensor]
Velocity = Callable[[Tensor, Tensor], Tensor]

# explicit Runge-Kutta tableaux (c, a, b) for the fixed-grid methods of `straightline.solvers`
_TABLEAUX = {
    "euler": ((0.0,), (), (1.0,)),
    "midpoint": ((0.0, 0.5), ((0.5,),), (0.0, 1.0)),
    "heun": ((0.0, 1.0), ((1.0,),), (0.5, 0.5)),
    "rk4": ((0.0, 0.5, 0.5, 1.0), ((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}


def per_sample(a: Tensor, like: Tensor) -> Tensor:
    """a [B] viewed as [B, 1, ..., 1] to broadcast against like [B, ...]."""
    return a.reshape(-1, *([1] * (like.ndim - 1)))


def check_flow_map(u: object, name: str = "u") -> None:
    """ValueError unless u can be called as u(x, s, t); a velocity field v(x, t[, y]) is refused."""
    if not callable(u):
        raise ValueError(f"{name} must be a flow map: a callable u(x, s, t), got {type(u).__name__}")
    try:
        sig = inspect.signature(u.forward if isinstance(u, torch.nn.Module) else u)
    except (TypeError, ValueError):  # a builtin whose signature Python cannot read: trust it
        return
    try:
        sig.bind(None, None, None)
    except TypeError:
        raise ValueError(
            f"{name} must take three arguments u(x [B, ...], s [B], t [B]), got a callable with signature {sig}"
        ) from None
    params = list(sig.parameters)
    if len(params) >= 3 and params[1] == "t" and params[2] == "y":
        raise ValueError(
            f"{name} looks like a velocity field v(x, t, y) (signature {sig}); a flow map takes u(x, s, t): "
            "use models.FlowMapMLP or models.FlowMapMMDiT"
        )


def check_batch(x: object, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[0] == 0 or not x.is_floating_point():
        got = f"{x.dtype} {list(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a non-empty floating-point batch [B, ...] (at least 2 dims), got {got}")
    return x


def check_times(s: Tensor | float, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor]:
    """(s, t) as [B] tensors in x's dtype; ValueError unless 0 <= s <= t <= 1 with one pair per sample."""
    batch = x.shape[0]
    out = []
    for name, value in (("s", s), ("t", t)):
        value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        if value.ndim == 0:
            value = value.expand(batch)
        check_time(value, batch, name)
        out.append(value)
    s, t = out
    bad = torch.nonzero(s > t)
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"s must be <= t (a flow map jumps forward, 0 <= s <= t <= 1), got s = {s[i].item():.6g} > "
            f"t = {t[i].item():.6g} at index {i}"
        )
    return s, t


def check_output(out: object, x: Tensor, name: str = "u") -> Tensor:
    if not isinstance(out, Tensor) or out.shape != x.shape:
        got = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{name}(x, s, t) must return a tensor shaped like x {list(x.shape)}, got {got}")
    return out


def jump(u: FlowMap, x: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """X_{s,t}(x) = x + (t - s) u(x, s, t): where the particle at x at time s is at time t, [B, ...]."""
    return x + per_sample(t - s, x) * u(x, s, t)


def average_velocity(v: Velocity, x: Tensor, s: Tensor | float, t: Tensor | float, *, steps: int = 100,
                     method: str = "rk4") -> Tensor:
    """The exact average velocity u(x, s, t) = (1 / (t - s)) ∫_s^t v(x_τ, τ) dτ of a velocity field v(x, t).

    Integrates dx/dτ = v from x at τ = s to τ = t with `steps` equal steps of `method` (euler,
    midpoint, heun or rk4) on each sample's own grid, and returns the mean of the step slopes, so
    u(x, s, s) = v(x, s) exactly (no division by t - s). Differentiable in x, s and t.
    """
    check_positive_int(steps, "steps")
    check_choice(method, "method", FIXED_METHODS)
    x = check_batch(x)
    s, t = check_times(s, t, x)
    h = (t - s) / steps  # [B] step size of each sample
    state, total = x, torch.zeros_like(x)
    for k in range(steps):
        slope = _rk_slope(v, state, s + k * h, h, _TABLEAUX[method])  # [B, ...]
        state = state + per_sample(h, x) * slope
        total = total + slope
    return total / steps  # [B, ...]


def _rk_slope(v: Velocity, x: Tensor, tau: Tensor, h: Tensor, tableau) -> Tensor:
    """The slope of one explicit Runge-Kutta step from x [B, ...] at times tau [B] with steps h [B]."""
    c, a, b = tableau
    hx = per_sample(h, x)  # [B, 1, ...]
    slopes: list[Tensor] = []
    for i, ci in enumerate(c):
        stage = x
        for aij, kj in zip(a[i - 1] if i else (), slopes):
            stage = stage + hx * aij * kj
        slopes.append(check_output(v(stage, tau + ci * h), x, "v"))
    return sum(bi * ki for bi, ki in zip(b, slopes))  # [B, ...]


def meanflow_pair(u: FlowMap, x: Tensor, s: Tensor, t: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """(u(x, s, t), MeanFlow target) from one forward-mode pass; the target is detached.

    d/ds u(x_s, s, t) along the trajectory (dx/ds = v) is the Jacobian-vector product of u with
    the tangent (v, 1, 0) for (x, s, t); target = v + (t - s) du/ds.
    """
    # listing: meanflow-target
    u_value, du_ds = jvp(u, (x, s, t), (v, torch.ones_like(s), torch.zeros_like(t)))  # [B, ...] each
    target = v + per_sample(t - s, x) * du_ds  # u = v + (t - s)(v . grad_x u + d_s u)
    # end listing
    return check_output(u_value, x), target.detach()


def meanflow_target(u: FlowMap, x: Tensor, s: Tensor | float, t: Tensor | float, v: Tensor | Velocity) -> Tensor:
    """The MeanFlow regression target v + (t - s)(v · ∇_x u + ∂_s u) at (x, s, t), detached, [B, ...].

    `u` is a flow map u(x, s, t); `v` is the velocity at (x, s): a tensor shaped like x (in
    training the conditional velocity x_1 - x_0) or a velocity field v(x, t), evaluated at (x, s).
    With the exact flow map of a flow and that flow's exact velocity, the target equals u(x, s, t):
    this is the MeanFlow identity in this toolkit's convention (d/ds of (t - s) u(x_s, s, t) = -v).
    """
    check_flow_map(u)
    x = check_batch(x)
    s, t = check_times(s, t, x)
    v_x = v(x, s) if callable(v) and not isinstance(v, Tensor) else v
    if not isinstance(v_x, Tensor) or v_x.shape != x.shape:
        got = list(v_x.shape) if isinstance(v_x, Tensor) else type(v_x).__name__
        raise ValueError(f"v must be a tensor shaped like x {list(x.shape)} or a velocity field v(x, t), got {got}")
    return meanflow_pair(u, x, s, t, v_x.to(x.dtype))[1]


def sample(u: FlowMap, x_0: Tensor, *, steps: int = 1, t_span: tuple[float, float] = (0.0, 1.0),
           keep_path: bool = False) -> Trajectory:
    """Jump with the flow map along `steps` equal intervals of t_span: nfe == steps.

    x_{k+1} = x_k + (t_{k+1} - t_k) u(x_k, t_k, t_{k+1}) on the grid t_0 = t_span[0] < ... < t_steps
    = t_span[1]; one step is x_1 = x_0 + u(x_0, 0, 1). Runs under torch.no_grad(). Without
    `keep_path` the trajectory holds the start and the end.
    """
    check_flow_map(u)
    check_positive_int(steps, "steps")
    t0, t1 = (float(t_span[0]), float(t_span[1]))
    if not (0.0 <= t0 < t1 <= 1.0):
        raise ValueError(f"t_span must be two times 0 <= t_span[0] < t_span[1] <= 1 (flow maps jump forward), got {t_span!r}")
    x = check_batch(x_0, "x_0")
    ts = torch.linspace(t0, t1, steps + 1, dtype=x.dtype, device=x.device)  # [steps + 1]
    xs, nfe = [x], 0
    with torch.no_grad():
        for k in range(steps):
            s, t = ts[k].expand(x.shape[0]), ts[k + 1].expand(x.shape[0])  # [B] each
            x = x + (ts[k + 1] - ts[k]) * check_output(u(x, s, t), x)
            nfe += 1
            if keep_path or k == steps - 1:
                xs.append(x)
    if not keep_path:
        ts = ts[[0, -1]]
    return Trajectory(ts=ts, xs=torch.stack(xs), nfe=nfe)
