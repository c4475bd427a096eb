"""Every registered fault measurably breaks sampling (W2 to the data grows)."""

import pytest
import torch

import straightline as sl
from straightline.faults import FAULTS, apply_faults, fault_names
from straightline.oracles import GaussianMixture

# the exact marginal field of a two-cluster mixture stands in for a perfectly trained model
GM = GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], [0.35, 0.35])
N = 1000


def _w2_after(names, steps):
    g = torch.Generator().manual_seed(0)
    x_0 = torch.randn(N, 2, generator=g)
    data = GM.sample(N, generator=g)
    v, start = apply_faults(names, GM, x_0, data)
    out = sl.integrate(v, start, steps=steps).x
    return sl.metrics.w2(out, GM.sample(N, generator=torch.Generator().manual_seed(9)))


def test_registry():
    assert fault_names() == ["curved-velocity", "frozen-time", "start-from-data"]


# curvature hurts coarse solvers; the other two faults do damage however fine the steps
STEPS = {"curved-velocity": 10, "frozen-time": 100, "start-from-data": 100}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_breaks_the_samples(name):
    steps = STEPS[name]
    healthy = _w2_after([name][:0], steps)
    broken = _w2_after([name], steps)
    assert broken > 2 * healthy, (name, healthy, broken)


def _w2_rk4(names, steps):
    g = torch.Generator().manual_seed(0)
    x_0 = torch.randn(N, 2, generator=g)
    v, start = apply_faults(names, GM, x_0, GM.sample(N, generator=g))
    out = sl.integrate(v, start, steps=steps, method="rk4").x
    return sl.metrics.w2(out, GM.sample(N, generator=torch.Generator().manual_seed(9)))


def test_curved_velocity_is_harmless_when_integrated_accurately():
    # the detour returns to the same end points, so only coarse solvers suffer: a real curvature fault
    assert _w2_rk4(["curved-velocity"], 200) < 1.1 * _w2_rk4([], 200)


def test_unknown_fault_is_named():
    with pytest.raises(ValueError, match=r"unknown fault\(s\) \['gravity'\]; accepted: curved-velocity"):
        apply_faults(["gravity"], GM, torch.zeros(2, 2), torch.zeros(2, 2))
