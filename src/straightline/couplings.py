"""Couplings: how a batch of noise is paired with a batch of data before interpolating.

Each coupling takes x_0 (noise) and x_1 (data), both [B, ...], and returns them re-paired. The
data keep their order; the noise is permuted (exact OT) or resampled (Sinkhorn), so every data
point is used exactly once.
"""

from __future__ import annotations

import numpy as np
import ot
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from torch import Tensor

from ._checks import check_same_shape

try:
    from . import _assignment  # the compiled exact solver (setup.py builds it)
except ImportError:  # pragma: no cover - only without a C compiler at install time
    _assignment = None

__all__ = ["independent", "exact_ot", "exact_ot_permutation", "sinkhorn", "sinkhorn_plan"]


def independent(x_0: Tensor, x_1: Tensor) -> tuple[Tensor, Tensor]:
    """The pairs as drawn: noise and data independent."""
    check_same_shape(x_0, x_1)
    return x_0, x_1


def _sq_cost(x_0: Tensor, x_1: Tensor) -> Tensor:
    a = x_0.detach().flatten(1).double()  # [B, D]
    b = x_1.detach().flatten(1).double()  # [B, D]
    return torch.cdist(a, b).pow_(2)  # [B, B] squared Euclidean


def exact_ot_permutation(x_0: Tensor, x_1: Tensor) -> Tensor:
    """perm [B] such that pairing x_0[perm[j]] with x_1[j] minimises the total squared distance."""
    check_same_shape(x_0, x_1)
    if not (torch.isfinite(x_0).all() and torch.isfinite(x_1).all()):
        raise ValueError("exact_ot needs finite x_0 and x_1; the batch holds NaN or infinity")
    a = x_0.detach().flatten(1).cpu().double().numpy()  # [B, D]
    b = x_1.detach().flatten(1).cpu().double().numpy()  # [B, D]
    cost = cdist(a, b, "sqeuclidean")  # [B, B] (2x faster than torch.cdist here; overflow is refused by the solver)
    col_to_row = _assign_columns(cost)  # [B]
    return torch.from_numpy(col_to_row).to(x_0.device)


def _assign_columns(cost: np.ndarray) -> np.ndarray:
    """For each column j the row paired with it, by an optimal assignment of cost [B, B]."""
    n = cost.shape[0]
    if _assignment is not None:  # the compiled auction (src/straightline/_assignment.c)
        cost = np.ascontiguousarray(cost, dtype=np.float64)
        return _inverse(np.frombuffer(_assignment.solve(cost, n), dtype=np.int64))  # [B]
    # Fallback when the extension was not built: POT's network simplex; with uniform weights its
    # optimal vertex is a permutation matrix scaled by 1/B.
    plan = ot.emd(np.full(n, 1.0 / n), np.full(n, 1.0 / n), cost)  # [B, B]
    col_to_row = plan.argmax(axis=0)
    if np.array_equal(np.sort(col_to_row), np.arange(n)) and np.allclose(plan[col_to_row, np.arange(n)], 1.0 / n):
        return col_to_row
    _, row_to_col = linear_sum_assignment(cost)  # degenerate emd output: the Hungarian solver (rows 0..B-1)
    return _inverse(row_to_col)


def _inverse(perm: np.ndarray) -> np.ndarray:
    """The inverse permutation: inverse[perm[i]] = i."""
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(len(perm))
    return inverse


def exact_ot(x_0: Tensor, x_1: Tensor) -> tuple[Tensor, Tensor]:
    """Minibatch optimal transport: the assignment minimising sum ||x_0 - x_1||^2.

    A true permutation: every noise and every data point is used exactly once (unlike sampling
    pairs from the plan with replacement).
    """
    perm = exact_ot_permutation(x_0, x_1)
    return x_0[perm], x_1


def _sinkhorn_potentials(cost: Tensor, eps: Tensor, log_w: Tensor, iters: int, tol: float) -> tuple[Tensor, Tensor]:
    """The dual potentials (f [B], g [B]) of entropic OT for cost [B, B] and log-weights log_w [B],
    by alternating log-domain updates until f moves less than tol * eps (at most `iters` rounds)."""
    f = torch.zeros(len(log_w), dtype=cost.dtype, device=cost.device)
    g = torch.zeros_like(f)
    for _ in range(iters):
        f_prev = f
        f = -eps * torch.logsumexp((g[None, :] - cost) / eps + log_w[None, :], dim=1)
        g = -eps * torch.logsumexp((f[:, None] - cost) / eps + log_w[:, None], dim=0)
        if torch.max(torch.abs(f - f_prev)) < tol * eps:
            break
    return f, g


def sinkhorn_plan(x_0: Tensor, x_1: Tensor, reg: float, *, iters: int = 2000, tol: float = 1e-9) -> Tensor:
    """The entropic OT plan [B, B] between uniform weights (log-domain Sinkhorn, float64).

    `reg` is relative to the mean squared distance of the batch, so the same value means the same
    amount of blur at any data scale.
    """
    check_same_shape(x_0, x_1)
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg!r}")
    cost = _sq_cost(x_0, x_1)  # [B, B]
    eps = reg * cost.mean().clamp_min(1e-12)
    n = cost.shape[0]
    log_w = torch.full((n,), -np.log(n), dtype=cost.dtype, device=cost.device)  # uniform marginals
    f, g = _sinkhorn_potentials(cost, eps, log_w, iters, tol)  # [B], [B]
    log_plan = (f[:, None] + g[None, :] - cost) / eps + log_w[:, None] + log_w[None, :]
    return log_plan.exp()


def sinkhorn(
    x_0: Tensor, x_1: Tensor, reg: float = 0.05, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Entropic OT coupling: for each data point x_1[j], draw its noise from the plan's column j.

    As reg -> 0 the plan becomes the exact assignment and so do the pairs; large reg tends to the
    independent coupling.
    """
    plan = sinkhorn_plan(x_0, x_1, reg)  # [B, B]
    cond = (plan / plan.sum(dim=0, keepdim=True)).T  # [B, B] row j: p(x_0 | x_1[j])
    idx = torch.multinomial(cond.float().cpu(), 1, generator=generator).squeeze(1)  # [B]
    return x_0[idx.to(x_0.device)], x_1
