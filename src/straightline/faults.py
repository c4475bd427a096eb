"""Named faults injected into the sampling pipeline, for Break-It labs and robustness tests.

A fault rewrites the two things sampling uses, the velocity field v(x, t) and the starting points
x_0, and everything downstream (the solver, the metrics) runs unchanged. Each fault is real: it
damages the samples at every step count from 2 up (tests/toolkit/test_faults.py proves it on an
exact field, tests/course/test_break_it.py on every shipped model the Break-It lab offers). With a
single Euler step even the healthy sampler sends every particle to about the data's mean
(x_0 + v(x_0, 0) = E[x_1] for the exact field), so there is nothing left there to break.

| name              | what changes |
|-------------------|--------------|
| `curved-velocity` | the flow is bent: every trajectory swings around the origin and back, y(t) = R(A sin(pi t)) x(t) with R a rotation in the plane of the first two coordinates; exact integration lands on the same end points, but Euler cuts each bend and the particles spiral outward (the damage shrinks as the steps grow) |
| `frozen-time`     | the network is always told t = 0, whatever the true time: its answer for pure noise, "head for the data's mean", is applied all the way, and the cloud shrinks toward the mean |
| `velocity-bias`   | a constant velocity b is added to the field (a mis-set output bias): alone it would push every particle by b over the unit of time; the field then acts on the displaced points (with few steps it enlarges the offset, with many it pulls part of it back), and the samples end shifted at every step count |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .solvers import Velocity

__all__ = ["Fault", "FAULTS", "fault_names", "apply_faults"]



@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    rewrite: Callable[[Velocity, Tensor, Tensor], tuple[Velocity, Tensor]]

    def __call__(self, v: Velocity, x_0: Tensor, data: Tensor) -> tuple[Velocity, Tensor]:
        """(v, x_0) with this fault injected; `data` supplies real samples where a fault needs them."""
        return self.rewrite(v, x_0, data)


def _rotate(z: Tensor, angle: Tensor) -> Tensor:
    """Rotate the first two coordinates of each flattened sample z [B, D] by angle [B]."""
    c, s = torch.cos(angle), torch.sin(angle)
    out = z.clone()
    out[:, 0] = c * z[:, 0] - s * z[:, 1]
    out[:, 1] = s * z[:, 0] + c * z[:, 1]
    return out


def _curved(v: Velocity, x_0: Tensor, data: Tensor, amplitude: float = math.pi) -> tuple[Velocity, Tensor]:
    # y = R(phi(t)) x with phi(t) = A sin(pi t), phi(0) = phi(1) = 0, solves
    # dy/dt = R(phi) v(R(-phi) y, t) + phi'(t) J y, where J rotates by 90 degrees
    if x_0[0].numel() < 2:
        raise ValueError("curved-velocity needs samples with at least 2 numbers")

    def bent(y: Tensor, t: Tensor) -> Tensor:
        flat = y.reshape(y.shape[0], -1)  # [B, D]
        phi = amplitude * torch.sin(math.pi * t.to(y.dtype))  # [B]
        dphi = amplitude * math.pi * torch.cos(math.pi * t.to(y.dtype))  # [B]
        x = _rotate(flat, -phi).reshape(y.shape)
        out = _rotate(v(x, t).reshape(flat.shape), phi)  # [B, D]
        out[:, 0] -= dphi * flat[:, 1]
        out[:, 1] += dphi * flat[:, 0]
        return out.reshape(y.shape)

    return bent, x_0


def _frozen_time(v: Velocity, x_0: Tensor, data: Tensor) -> tuple[Velocity, Tensor]:
    def frozen(x: Tensor, t: Tensor) -> Tensor:
        return v(x, torch.zeros_like(t))

    return frozen, x_0


#: the `velocity-bias` offset, along the first coordinate
BIAS = 0.6


def _velocity_bias(v: Velocity, x_0: Tensor, data: Tensor) -> tuple[Velocity, Tensor]:
    def biased(x: Tensor, t: Tensor) -> Tensor:
        out = v(x, t).reshape(x.shape[0], -1).clone()  # [B, D]
        out[:, 0] += BIAS
        return out.reshape(x.shape)

    return biased, x_0


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        Fault("curved-velocity", "every path swings half a turn around the origin and back", _curved),
        Fault("frozen-time", "the network is always told t = 0", _frozen_time),
        Fault("velocity-bias", f"a constant velocity {BIAS} along the first axis is added to the field", _velocity_bias),
    ]
}


def fault_names() -> list[str]:
    return list(FAULTS)


def apply_faults(names: list[str] | tuple[str, ...], v: Velocity, x_0: Tensor, data: Tensor) -> tuple[Velocity, Tensor]:
    """Inject several faults in registry order."""
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; accepted: {', '.join(FAULTS)}")
    for name in FAULTS:
        if name in names:
            v, x_0 = FAULTS[name](v, x_0, data)
    return v, x_0
