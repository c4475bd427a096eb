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
    assert fault_names() == ["curved-velocity", "frozen-time", "velocity-bias"]


@pytest.mark.parametrize("name", list(FAULTS))
@pytest.mark.parametrize("steps", [2, 5, 20, 100])
def test_each_fault_breaks_the_samples_at_every_step_count(name, steps):
    healthy = _w2_after([], steps)
    broken = _w2_after([name], steps)
    assert broken > 1.2 * healthy, (name, steps, healthy, broken)


def test_velocity_bias_shifts_the_samples_sideways():
    # the bias pushes by 0.6 over the unit of time; the field then acts on the displaced points
    # (at two steps it amplifies the offset, at many it pulls part of it back), never cancelling it
    x_0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(3))
    for steps in (2, 7, 40):
        v, start = apply_faults(["velocity-bias"], GM, x_0, x_0)
        shift = (sl.integrate(v, start, steps=steps).x - sl.integrate(GM, x_0, steps=steps).x).mean(0)
        assert float(shift[0]) > 0.1 and abs(float(shift[1])) < 0.05, (steps, shift)


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
