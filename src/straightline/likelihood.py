"""Exact log-likelihood of a flow by integrating the divergence of its velocity field.

A velocity field v(x, t) transports the noise density p_0 = N(0, I) at t = 0 to a model density
p_1 at t = 1. Along a trajectory x_t of the flow the log-density obeys the instantaneous change
of variables d/dt log p_t(x_t) = -div v(x_t, t), so

    log p_1(x_1) = log N(x_0; 0, I) - ∫_0^1 div v(x_t, t) dt,

where x_t is the trajectory that ends at the data point x_1. `log_prob` solves the augmented ODE

    d/dt [x, delta] = [v(x, t), div v(x, t)]   from (x_1, 0) at t = 1 back to t = 0,

so that delta(0) = -∫_0^1 div v dt and log p_1(x_1) = log N(x(0); 0, I) + delta(0).

The divergence is the trace of the Jacobian ∂v/∂x:

- `estimator="exact"`: one autograd backward pass per dimension (D passes per evaluation of v);
  exact, for small D.
- `estimator="hutchinson"`: tr J ≈ mean_k ε_k^T J ε_k over `n_probes` probe vectors ε_k
  (Rademacher ±1 or standard Gaussian), one backward pass each. The probes are drawn once from
  `seed` and kept fixed along the whole trajectory, which makes the integrated estimate unbiased
  (E[ε^T (∫ J dt) ε] = ∫ tr J dt) and reproducible. With Rademacher probes a diagonal Jacobian is
  estimated exactly.

The result is the log-density of the model's own t = 1 marginal, whatever the model learned;
its accuracy is that of the ODE solver (`method`, `steps`) and of the divergence estimator.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ._checks import check_positive_int
from .solvers import METHODS, integrate

__all__ = ["log_prob", "divergence", "ESTIMATORS", "PROBES"]

ESTIMATORS = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")


def divergence(v_out: Tensor, x: Tensor, *, probes: Tensor | None = None) -> Tensor:
    """div_x v at each sample, [B], from v_out = v(x, t) [B, ...] computed with x.requires_grad.

    Without `probes`: exact, one backward pass per dimension. With probes [K, B, ...] (the
    Hutchinson estimator): mean over k of ε_k^T (∂v/∂x) ε_k, one backward pass per probe.
    The graph of v_out is kept only as long as needed (no create_graph).
    """
    batch = x.shape[0]
    flat = v_out.reshape(batch, -1)  # [B, D]
    dim = flat.shape[1]
    if probes is None:
        div = torch.zeros(batch, dtype=v_out.dtype, device=v_out.device)  # [B]
        for i in range(dim):
            (g,) = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=i < dim - 1)  # [B, ...]
            div = div + g.reshape(batch, -1)[:, i]
        return div
    k = probes.shape[0]
    div = torch.zeros(batch, dtype=v_out.dtype, device=v_out.device)  # [B]
    for j in range(k):
        eps = probes[j]  # [B, ...]
        (vjp,) = torch.autograd.grad((v_out * eps).sum(), x, retain_graph=j < k - 1)  # [B, ...] ε^T J
        div = div + (vjp * eps).reshape(batch, -1).sum(1)
    return div / k


def _standard_normal_log_prob(x: Tensor) -> Tensor:
    flat = x.reshape(x.shape[0], -1)  # [B, D]
    return -0.5 * (flat**2).sum(1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)  # [B]


def log_prob(
    model: Callable[..., Tensor],
    x: Tensor,
    *,
    steps: int = 100,
    method: str = "rk4",
    estimator: str = "exact",
    n_probes: int = 1,
    probe: str = "rademacher",
    seed: int = 0,
    y: Tensor | None = None,
    atol: float = 1e-6,
    rtol: float = 1e-6,
) -> Tensor:
    """log p_1(x) [B] under the flow of `model` (a velocity field v(x, t), or v(x, t, y) with `y`).

    x [B, ...] are data points (t = 1). The augmented ODE is integrated from t = 1 to t = 0 with
    a fixed-grid `method` (euler, midpoint, heun, rk4) over `steps` steps, or with the adaptive
    dopri5 (controlled by atol/rtol; `steps` is then unused). `estimator` picks the divergence:
    "exact" (autograd, D backward passes per evaluation) or "hutchinson" (`n_probes` probes of
    kind `probe`, drawn from `seed`, fixed along the trajectory). The model's parameters get no
    gradient (and are not modified); the result is detached, in x's dtype.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; accepted: {', '.join(ESTIMATORS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; accepted: {', '.join(METHODS)}")
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; accepted: {', '.join(PROBES)}")
    check_positive_int(steps, "steps")
    check_positive_int(n_probes, "n_probes")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch of shape [B, ...], got {list(getattr(x, 'shape', []))}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if y is not None and (not isinstance(y, Tensor) or y.shape[:1] != x.shape[:1]):
        got = list(y.shape) if isinstance(y, Tensor) else repr(y)
        raise ValueError(f"y must be a tensor with one entry per sample, shape [{x.shape[0]}, ...], got {got}")

    batch, shape = x.shape[0], x.shape[1:]
    dim = math.prod(shape)
    probes = None
    if estimator == "hutchinson":
        g = torch.Generator(device="cpu").manual_seed(seed)
        if probe == "rademacher":
            probes = torch.randint(0, 2, (n_probes, batch, *shape), generator=g).to(x.dtype) * 2 - 1
        else:
            probes = torch.randn(n_probes, batch, *shape, generator=g, dtype=x.dtype)
        probes = probes.to(x.device)  # [K, B, ...]

    def augmented(z: Tensor, t: Tensor) -> Tensor:
        # z [B, D + 1] = (flattened x_t, running integral delta); t [B]
        with torch.enable_grad():
            x_t = z[:, :dim].detach().reshape(batch, *shape).requires_grad_(True)  # [B, ...]
            v = model(x_t, t) if y is None else model(x_t, t, y)  # [B, ...]
            if v.shape != x_t.shape:
                raise ValueError(f"model output has shape {list(v.shape)}, expected {list(x_t.shape)} (same as x)")
            div = divergence(v, x_t, probes=probes)  # [B]
        return torch.cat([v.detach().reshape(batch, dim), div.detach()[:, None]], dim=1)  # [B, D + 1]

    z_1 = torch.cat([x.detach().reshape(batch, dim), torch.zeros(batch, 1, dtype=x.dtype, device=x.device)], 1)
    # autograd.grad(..., x_t) only runs the backward nodes that lead to x_t: no parameter gradients
    traj = integrate(
        augmented,
        z_1,  # [B, D + 1] at t = 1
        steps=None if method == "dopri5" else steps,
        method=method,
        t_span=(1.0, 0.0),
        atol=atol,
        rtol=rtol,
    )
    z_0 = traj.x  # [B, D + 1] at t = 0
    x_0, delta = z_0[:, :dim].reshape(batch, *shape), z_0[:, dim]  # noise [B, ...], -∫ div v dt [B]
    return (_standard_normal_log_prob(x_0) + delta).detach()
