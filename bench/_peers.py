"""The peer toolkits (torchcfm, flow_matching) and hand-written baselines, wrapped to one convention.

Every loss function here has the signature loss(model, x_1) -> scalar, with the velocity network
called as model(x_t, t), t of shape [B] -- the same MLP object for every toolkit, so that the only
thing that differs between them is the toolkit's own code. Samplers take x_0 and return x_1.
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

Loss = Callable[[Callable[[Tensor, Tensor], Tensor], Tensor], Tensor]

__all__ = [
    "versions",
    "bare_loss",
    "torchcfm_loss",
    "flow_matching_loss",
    "bare_euler",
    "FlowMatchingSampler",
    "torchcfm_sampler_or_reason",
    "TorchcfmExampleMLP",
    "FlowMatchingExampleMLP",
    "Counted",
    "sq_cost_numpy",
    "perm_from_lapjv",
    "perm_from_emd",
    "perm_from_scipy",
]


def versions() -> dict[str, str]:
    out = {}
    for mod, dist in (("torch", "torch"), ("torchcfm", "torchcfm"), ("flow_matching", "flow_matching"),
                      ("ot", "POT"), ("scipy", "scipy"), ("lap", "lap"), ("torchdiffeq", "torchdiffeq")):
        try:
            m = importlib.import_module(mod)
            out[dist] = str(getattr(m, "__version__", "?"))
        except Exception as exc:  # a missing peer is reported, not fatal
            out[dist] = f"not importable ({type(exc).__name__}: {exc})"
    return out


# ----------------------------------------------------------------------------------------- losses


def bare_loss(model, x_1: Tensor) -> Tensor:
    """The CFM loss written by hand: no checks, no dataclasses, nothing but the arithmetic."""
    x_0 = torch.randn_like(x_1)  # [B, D]
    t = torch.rand(x_1.shape[0], dtype=x_1.dtype)  # [B]
    tb = t[:, None]  # [B, 1]
    x_t = (1 - tb) * x_0 + tb * x_1
    return torch.mean((model(x_t, t) - (x_1 - x_0)) ** 2)


def torchcfm_loss(sigma: float = 0.0, exact_ot: bool = False) -> Loss:
    """torchcfm's ConditionalFlowMatcher / ExactOptimalTransportConditionalFlowMatcher, as its README uses it."""
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
    )

    fm = (ExactOptimalTransportConditionalFlowMatcher if exact_ot else ConditionalFlowMatcher)(sigma=sigma)

    def loss(model, x_1: Tensor) -> Tensor:
        x_0 = torch.randn_like(x_1)
        t, x_t, u_t = fm.sample_location_and_conditional_flow(x_0, x_1)
        return torch.mean((model(x_t, t) - u_t) ** 2)

    return loss


def flow_matching_loss() -> Loss:
    """flow_matching's AffineProbPath(CondOTScheduler()), as in its 2-D example notebook."""
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler

    path = AffineProbPath(scheduler=CondOTScheduler())

    def loss(model, x_1: Tensor) -> Tensor:
        x_0 = torch.randn_like(x_1)
        t = torch.rand(x_1.shape[0], dtype=x_1.dtype)
        sample = path.sample(t=t, x_0=x_0, x_1=x_1)
        return torch.pow(model(sample.x_t, sample.t) - sample.dx_t, 2).mean()

    return loss


# --------------------------------------------------------------------------------------- samplers


class Counted:
    """v(x, t) that counts its evaluations (and accepts keyword arguments, as flow_matching calls it)."""

    def __init__(self, v):
        self.v, self.nfe = v, 0

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        self.nfe += 1
        if t.ndim == 0:  # flow_matching / torchdiffeq pass a scalar time
            t = t.expand(x.shape[0])
        return self.v(x, t)


@torch.no_grad()
def bare_euler(model, x_0: Tensor, steps: int = 100) -> Tensor:
    """The Euler loop written by hand: x <- x + dt v(x, k dt)."""
    dt = 1.0 / steps
    x = x_0
    batch = x_0.shape[0]
    for k in range(steps):
        t = torch.full((batch,), k * dt, dtype=x_0.dtype)
        x = x + dt * model(x, t)
    return x


class FlowMatchingSampler:
    """flow_matching's ODESolver(velocity_model=...).sample(..., method="euler", step_size=1/steps)."""

    def __init__(self, model, steps: int = 100):
        from flow_matching.solver import ODESolver

        self.counted = Counted(model)
        self.solver = ODESolver(velocity_model=self.counted)
        self.step_size = 1.0 / steps

    def __call__(self, x_0: Tensor) -> Tensor:
        return self.solver.sample(x_init=x_0, step_size=self.step_size, method="euler")


def torchcfm_sampler_or_reason(model, steps: int = 100):
    """torchcfm samples through torchdyn's NeuralODE (its README); None and the reason if unavailable."""
    try:
        from torchdyn.core import NeuralODE
    except Exception as exc:
        return None, f"torchcfm's sampler needs torchdyn, which is not importable here ({type(exc).__name__}); skipped"

    class _Wrap(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, t, x, *args, **kwargs):
            return self.m(x, t.expand(x.shape[0]))

    node = NeuralODE(_Wrap(model), solver="euler", sensitivity="adjoint")
    t_span = torch.linspace(0, 1, steps + 1)

    @torch.no_grad()
    def sample(x_0):
        return node.trajectory(x_0, t_span=t_span)[-1]

    return sample, None


# --------------------------------------------------------------------------------- example models


class TorchcfmExampleMLP(nn.Module):
    """torchcfm's own 2-D example network, torchcfm.models.models.MLP(dim=2, time_varying=True)
    (3 hidden layers of 64, SELU, t concatenated to x), called as v(x, t)."""

    def __init__(self):
        super().__init__()
        from torchcfm.models.models import MLP

        self.net = MLP(dim=2, time_varying=True)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


class FlowMatchingExampleMLP(nn.Module):
    """The architecture of flow_matching's 2-D example notebook (examples/2d_flow_matching.ipynb):
    t concatenated to x, 4 hidden layers of width 512 with x*sigmoid(x) (= SiLU), linear read-out."""

    def __init__(self, hidden: int = 512):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(3, hidden), nn.SiLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, 2))
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.main(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


# ---------------------------------------------------------------------------- exact OT assignments


def sq_cost_numpy(x_0: Tensor, x_1: Tensor) -> np.ndarray:
    """Squared Euclidean cost [B, B] in float64 via scipy (no torch intra-op threads involved)."""
    from scipy.spatial.distance import cdist

    a = x_0.detach().reshape(x_0.shape[0], -1).double().numpy()
    b = x_1.detach().reshape(x_1.shape[0], -1).double().numpy()
    return cdist(a, b, "sqeuclidean")


def perm_from_scipy(cost: np.ndarray) -> np.ndarray:
    """perm with x_0[perm[j]] paired to x_1[j], by scipy's linear_sum_assignment."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    perm = np.empty_like(rows)
    perm[cols] = rows
    return perm


def perm_from_lapjv(cost: np.ndarray) -> np.ndarray:
    """perm by lap.lapjv (Jonker-Volgenant): y[j] is the row assigned to column j."""
    import lap

    _, _, y = lap.lapjv(cost, extend_cost=False)
    return y


def perm_from_emd(cost: np.ndarray) -> np.ndarray:
    """perm from POT's network simplex (ot.emd) with uniform weights: the plan is a vertex of the
    Birkhoff polytope, i.e. a permutation matrix / B; its column argmax is the assignment."""
    import ot

    n = cost.shape[0]
    w = np.full(n, 1.0 / n)
    plan = ot.emd(w, w, cost)
    return plan.argmax(axis=0)
