"""What a simulation request costs, before it runs, and the cap on it.

`estimate(name, params)` is the CPU time a request takes on one core, in seconds, from a linear
model per simulation fitted to measurements (bench/sim_cost.py prints them beside this model):
network evaluations (rows through the network x evaluations), weighted by the network's size, plus
the W2 distance to the data where a simulation reports one (about quadratic in its points). The
coupling does not enter: it only selects which shipped model runs, and both cost the same.

The web app refuses a request whose estimate is over `MAX_COST_S` with a 422 that names the
parameters driving the cost and the limit. The cap is set just above the dearest request the
course's own pages make (log-density on a 64 x 64 grid with 50 RK4 steps, about 2.5 s).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_COST_S", "Cost", "estimate", "over_limit"]

MAX_COST_S = 3.0
_ROW_S = 1.0e-6  # one point through a 2-D toy MLP (22k weights) once, with the bookkeeping around it
_W2_S = 2.0e-7  # W2 of n points to as many data points: about n^2 of these
_EVAL_POINTS = 2000  # the simulations measure W2 on at most this many points


@dataclass(frozen=True)
class Cost:
    seconds: float  # estimated CPU seconds on one core
    drivers: tuple[str, ...]  # the parameters that make it large


def _w2(n: int) -> float:
    return _W2_S * min(n, _EVAL_POINTS) ** 2


def _euler(p: Any) -> float:
    return _ROW_S * p.particles * p.steps + _w2(p.particles)


_MODELS: dict[str, tuple[Callable[[Any], float], tuple[str, ...]]] = {
    "particles-flow": (lambda p: _ROW_S * p.particles * p.steps, ("particles", "steps")),
    "digit-emerging": (lambda p: 35 * _ROW_S * p.images * p.steps, ("images", "steps")),
    "curved-vs-straight": (lambda p: 1.5 * _ROW_S * p.particles * p.steps, ("particles", "steps")),
    "mixture-oracle": (lambda p: 15 * _ROW_S * p.samples + 10 * _ROW_S * p.grid**2, ("samples", "grid")),
    "velocity-field": (
        lambda p: _ROW_S * (p.grid**2 + p.particles * max(1, math.ceil(50 * p.t))),
        ("grid", "particles", "t"),
    ),
    "euler-steps": (_euler, ("particles", "steps")),
    "euler-faults": (lambda p: 2 * _euler(p), ("particles", "steps")),
    "solver-orders": (lambda p: 0.4 + 4.5e-3 * p.particles, ("particles",)),
    "log-density": (lambda p: 12 * _ROW_S * p.grid**2 * p.steps, ("grid", "steps")),
    "reflow-straightening": (lambda p: 1.5 + _ROW_S * p.particles * p.steps, ("particles", "steps")),
    "guided-digits": (lambda p: 350 * _ROW_S * p.images * p.steps, ("images", "steps")),
    "rotation-flow": (lambda p: 2.5 * _ROW_S * p.particles * p.steps, ("particles", "steps")),
    # moons: the drawn particles and 1000 more through two 2-D MLPs; digits: 16 + 300 images through the
    # digits flow MLP and the digits ε-MLP (about 75 µs per image and step together)
    "side-by-side": (lambda p: 0.2 + 75 * _ROW_S * 316 * p.steps if p.data == "digits"
                     else 0.3 + 6 * _ROW_S * p.particles * p.steps, ("particles", "steps")),
    # four samplers on the drawn particles and 1000 more, and four W2 of 1000 points
    "flowmap-nfe": (lambda p: 4 * _w2(1000) + 4 * _ROW_S * (p.particles + 1000) * p.nfe, ("particles", "nfe")),
    # RK4 paths (4 x 200 evaluations per particle, with the solver's bookkeeping) and one jump per pair of grid times
    "flowmap-jumps": (lambda p: 0.05 + _ROW_S * p.particles * (1200 + (p.grid + 1) * (p.grid + 2) / 2),
                      ("particles", "grid")),
}


def estimate(name: str, params: Any) -> Cost:
    """The estimated cost of simulation `name` with `params` (its parameter model)."""
    fn, drivers = _MODELS[name]
    return Cost(fn(params), drivers)


def over_limit(name: str, params: Any, limit: float = MAX_COST_S) -> str | None:
    """None when the request is within `limit`; else a sentence naming its parameters and the limit."""
    cost = estimate(name, params)
    if cost.seconds <= limit:
        return None
    values = ", ".join(f"{d}={getattr(params, d)}" for d in cost.drivers)
    return (
        f"{name} with {values} would take about {cost.seconds:.1f} s of computation; the limit is "
        f"{limit:.1f} s per request: lower {' or '.join(cost.drivers)}"
    )
