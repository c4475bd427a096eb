"""Named faults injected into the sampling pipeline, for Break-It labs and robustness tests.

A fault rewrites the two things sampling uses, the velocity field v(x, t) and the starting points
x_0, and everything downstream (the solver, the metrics) runs unchanged. Each fault is real: it
measurably damages the samples (tests/toolkit/test_faults.py proves it for every entry).

| name              | what changes |
|-------------------|--------------|
| `curved-velocity` | the flow is bent: trajectories become y(t) = x(t) + A sin(2 pi t) d, the same end points under exact integration but a sinusoidal detour that few-step solvers cut through |
| `frozen-time`     | the network is always told t = 0.5, whatever the true time |
| `start-from-data` | integration starts from data samples instead of Gaussian noise |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

__all__ = ["Fault", "FAULTS", "fault_names", "apply_faults"]

Velocity = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    rewrite: Callable[[Velocity, Tensor, Tensor], tuple[Velocity, Tensor]]

    def __call__(self, v: Velocity, x_0: Tensor, data: Tensor) -> tuple[Velocity, Tensor]:
        """(v, x_0) with this fault injected; `data` supplies real samples where a fault needs them."""
        return self.rewrite(v, x_0, data)


def _curved(v: Velocity, x_0: Tensor, data: Tensor, amplitude: float = 1.5) -> tuple[Velocity, Tensor]:
    # y(t) = x(t) + A sin(2 pi t) d solves dy/dt = v(y - A sin(2 pi t) d, t) + 2 pi A cos(2 pi t) d
    d = torch.zeros(x_0.shape[1:], dtype=x_0.dtype)
    d.view(-1)[0] = 1.0  # the first coordinate
    d.view(-1)[-1] = 1.0  # and the last (the same one in 1-D)
    d = d / d.norm()

    def bent(x: Tensor, t: Tensor) -> Tensor:
        tb = t.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)  # [B, 1, ...]
        offset = amplitude * torch.sin(2 * math.pi * tb) * d
        return v(x - offset, t) + 2 * math.pi * amplitude * torch.cos(2 * math.pi * tb) * d

    return bent, x_0


def _frozen_time(v: Velocity, x_0: Tensor, data: Tensor) -> tuple[Velocity, Tensor]:
    def frozen(x: Tensor, t: Tensor) -> Tensor:
        return v(x, torch.full_like(t, 0.5))

    return frozen, x_0


def _start_from_data(v: Velocity, x_0: Tensor, data: Tensor) -> tuple[Velocity, Tensor]:
    if data.shape[1:] != x_0.shape[1:] or len(data) < len(x_0):
        raise ValueError(f"start-from-data needs at least {len(x_0)} data points shaped like x_0, got {list(data.shape)}")
    return v, data[: len(x_0)].to(x_0.dtype)


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        Fault("curved-velocity", "the velocity field bends every path into a sinusoidal detour", _curved),
        Fault("frozen-time", "the network is always told t = 0.5", _frozen_time),
        Fault("start-from-data", "integration starts from data instead of noise", _start_from_data),
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
