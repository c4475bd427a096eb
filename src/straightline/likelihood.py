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

Options: keyword conditions (`y=labels`, any `**cond`) reach every call model(x, t, **cond);
`log_p0` replaces the N(0, I) source density (a callable x_0 [B, ...] -> [B]) for a flow trained
from another source; `grad=True` keeps the whole computation in the autograd graph (the solver
steps and the divergence with create_graph), so the result can be differentiated with respect
to x and to the model's parameters (maximum-likelihood training, ∂ log p / ∂x). `bits_per_dim`
turns a log-density into bits per dimension, with the dequantization convention documented there.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor

from ._checks import check_choice, check_positive_int
from ._fields import as_batch, as_conditions, check_signature
from .solvers import METHODS, integrate

__all__ = ["log_prob", "divergence", "bits_per_dim", "standard_normal_log_prob", "ESTIMATORS", "PROBES"]

ESTIMATORS = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")


def _divergence_terms(
    v_out: Tensor, flat: Tensor, probes: Tensor | None
) -> tuple[list[Tensor], Callable[[Tensor, int], Tensor]]:
    """The scalars to differentiate (one per dimension, or per probe) and how the i-th gradient
    g [B, ...] gives the i-th term [B] of the divergence; flat = v_out as [B, D]."""
    batch = flat.shape[0]
    if probes is None:
        rows = [flat[:, i].sum() for i in range(flat.shape[1])]
        picks = lambda g, i: g.reshape(batch, -1)[:, i]  # noqa: E731 - the i-th diagonal entry [B]
    else:
        rows = [(v_out * probes[j]).sum() for j in range(probes.shape[0])]  # ε_j^T v summed
        picks = lambda g, j: (g * probes[j]).reshape(batch, -1).sum(1)  # noqa: E731 - ε_j^T J ε_j [B]
    return rows, picks


def divergence(v_out: Tensor, x: Tensor, *, probes: Tensor | None = None, create_graph: bool = False) -> Tensor:
    """div_x v at each sample, [B], from v_out = v(x, t) [B, ...] computed with x.requires_grad.

    Without `probes`: exact, one backward pass per dimension. With probes [K, B, ...] (the
    Hutchinson estimator): mean over k of ε_k^T (∂v/∂x) ε_k, one backward pass per probe.
    With `create_graph` the result is itself differentiable (and the graph is kept); otherwise
    the graph of v_out is kept only as long as needed.
    """
    batch = x.shape[0]
    flat = v_out.reshape(batch, -1)  # [B, D]
    div = torch.zeros(batch, dtype=v_out.dtype, device=v_out.device)  # [B]
    if not v_out.requires_grad:  # a field that does not depend on x (or on anything): div = 0
        return div
    rows, picks = _divergence_terms(v_out, flat, probes)
    for i, row in enumerate(rows):
        keep = create_graph or i < len(rows) - 1
        (g,) = torch.autograd.grad(row, x, retain_graph=keep, create_graph=create_graph, allow_unused=True)
        div = div if g is None else div + picks(g, i)  # g [B, ...]; None where v ignores x
    return div if probes is None else div / len(rows)


def standard_normal_log_prob(x: Tensor) -> Tensor:
    """log N(x; 0, I) per sample [B] for x [B, ...]: the default source density."""
    flat = x.reshape(x.shape[0], -1)  # [B, D]
    return -0.5 * (flat**2).sum(1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)  # [B]


def bits_per_dim(log_p: Tensor, dim: int, *, bin_width: float | None = None) -> Tensor:
    """Bits per dimension of a log-density log_p [B] (nats) of D = `dim` dimensional data.

    Without `bin_width`: -log_p / (D ln 2), the continuous density's bits. For discrete data
    (e.g. 8-bit images) dequantized uniformly, x = scale (k + u) / levels with u ~ U[0, 1)^D, pass
    the width of one bin in the model's units, bin_width = scale / levels (1/256 for pixels scaled
    to [0, 1], 2/256 for [-1, 1]): then log P(k) >= E_u log p(x) + D log(bin_width), and the
    result -(log_p + D log bin_width) / (D ln 2) is an upper bound on the discrete model's bits
    (averaged over u, the usual reported figure: a uniform model of 8-bit data gives 8).
    """
    check_positive_int(dim, "dim")
    if bin_width is not None and (isinstance(bin_width, bool) or not isinstance(bin_width, (int, float)) or not bin_width > 0):
        raise ValueError(f"bin_width must be a number > 0 (e.g. 1/256 for 8-bit data in [0, 1]), got {bin_width!r}")
    log_bin = 0.0 if bin_width is None else dim * math.log(bin_width)
    return -(log_p + log_bin) / (dim * math.log(2))


def _check_options(estimator: str, method: str, probe: str, steps: int, n_probes: int, seed: int, log_p0) -> None:
    check_choice(estimator, "estimator", ESTIMATORS)
    check_choice(method, "method", METHODS)
    check_choice(probe, "probe", PROBES)
    check_positive_int(steps, "steps")
    check_positive_int(n_probes, "n_probes")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if log_p0 is not None and not callable(log_p0):
        raise ValueError(f"log_p0 must be a callable x_0 [B, ...] -> log-density [B], got {log_p0!r}")


def _probes(estimator: str, probe: str, n_probes: int, seed: int, x: Tensor) -> Tensor | None:
    """The Hutchinson probes [K, B, ...] drawn once from `seed`, or None for the exact trace."""
    if estimator != "hutchinson":
        return None
    g = torch.Generator(device="cpu").manual_seed(seed)
    if probe == "rademacher":
        probes = torch.randint(0, 2, (n_probes, *x.shape), generator=g).to(x.dtype) * 2 - 1
    else:
        probes = torch.randn(n_probes, *x.shape, generator=g, dtype=x.dtype)
    return probes.to(x.device)  # [K, B, ...]


def _check_x(x: Tensor) -> None:
    if x.ndim < 2:
        raise ValueError(f"x must be a non-empty batch of shape [B, ...], got {list(x.shape)}")


class _Augmented:
    """The augmented field (v, div v) on z [B, D + 1] = (flattened x_t, running integral)."""

    def __init__(self, model, shape, probes: Tensor | None, grad: bool, cond: dict[str, Any]):
        self.model, self.shape, self.probes, self.grad, self.cond = model, shape, probes, grad, cond
        self.dim = math.prod(shape)

    def __call__(self, z: Tensor, t: Tensor) -> Tensor:
        batch = z.shape[0]
        with torch.enable_grad():
            x_t = z[:, : self.dim].reshape(batch, *self.shape)  # [B, ...]
            if not (self.grad and x_t.requires_grad):  # a constant here: make it a leaf to differentiate at
                x_t = x_t.detach().requires_grad_(True)
            v = self.model(x_t, t, **self.cond)  # [B, ...]
            if not isinstance(v, Tensor) or v.shape != x_t.shape:
                got = list(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(f"model output has shape {got}, expected {list(x_t.shape)} (same as x)")
            div = divergence(v, x_t, probes=self.probes, create_graph=self.grad)  # [B]
        out = torch.cat([v.reshape(batch, self.dim), div[:, None]], dim=1)  # [B, D + 1]
        return out if self.grad else out.detach()


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
    atol: float = 1e-6,
    rtol: float = 1e-6,
    grad: bool = False,
    log_p0: Callable[[Tensor], Tensor] | None = None,
    **cond: Any,
) -> Tensor:
    """log p_1(x) [B] under the flow of `model`, a velocity field v(x, t, **cond).

    x [B, ...] are data points (t = 1). The augmented ODE is integrated from t = 1 to t = 0 with
    a fixed-grid `method` (euler, midpoint, heun, rk4) over `steps` steps, or with the adaptive
    dopri5 (controlled by atol/rtol; `steps` is then unused). `estimator` picks the divergence:
    "exact" (autograd, D backward passes per evaluation) or "hutchinson" (`n_probes` probes of
    kind `probe`, drawn from `seed`, fixed along the trajectory). Keyword conditions (y=labels,
    ...) are passed to every model call. `log_p0(x_0) -> [B]` is the source log-density (default
    N(0, I)). With `grad=False` (default) the result is detached and the model's parameters get
    no gradient; with `grad=True` it keeps the graph (differentiable in x and the parameters).
    """
    _check_options(estimator, method, probe, steps, n_probes, seed, log_p0)
    check_signature(model)
    x = as_batch(x, model, "x")
    _check_x(x)
    cond = as_conditions(cond, x)
    batch, shape = x.shape[0], x.shape[1:]
    field = _Augmented(model, shape, _probes(estimator, probe, n_probes, seed, x), grad, cond)
    flat = x if grad else x.detach()
    z_1 = torch.cat([flat.reshape(batch, field.dim), torch.zeros(batch, 1, dtype=x.dtype, device=x.device)], 1)
    steps_arg = None if method == "dopri5" else steps
    z_0 = integrate(field, z_1, steps=steps_arg, method=method, t_span=(1.0, 0.0), atol=atol, rtol=rtol, grad=grad).x
    x_0, delta = z_0[:, : field.dim].reshape(batch, *shape), z_0[:, field.dim]  # noise [B, ...], -∫ div v dt [B]
    base = standard_normal_log_prob(x_0) if log_p0 is None else log_p0(x_0)  # [B]
    if not isinstance(base, Tensor) or base.shape != (batch,):
        got = list(base.shape) if isinstance(base, Tensor) else type(base).__name__
        raise ValueError(f"log_p0 must return one log-density per sample, shape [{batch}], got {got}")
    return base + delta if grad else (base + delta).detach()
