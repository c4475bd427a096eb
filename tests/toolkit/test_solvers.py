"""Solvers: exactness, order of convergence, NFE counts, adaptive tolerance, backward runs."""

import math

import numpy as np
import pytest
import torch

import straightline as sl
from straightline.solvers import FIXED_METHODS


def test_one_euler_step_is_exact_for_a_constant_field():
    c = torch.tensor([[3.0, -2.0]])
    x_0 = torch.tensor([[0.5, 0.5], [1.0, -1.0]], dtype=torch.float64)
    traj = sl.integrate(lambda x, t: c.to(x).expand_as(x), x_0, steps=1)
    assert torch.allclose(traj.x, x_0 + c.double(), atol=0, rtol=0)
    assert traj.nfe == 1


def _linear_ode(x, t):
    # dx/dt = (2 t - 1) x  =>  x(t) = x(0) exp(t^2 - t)
    return (2 * t[:, None] - 1) * x


def _exact(x_0, t):
    return x_0 * math.exp(t * t - t)


def _riccati(x, t):
    # dx/dt = -x^2  =>  x(t) = x(0) / (1 + x(0) t): no error cancellation for any of the methods
    return -x * x


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_measured_order_of_convergence(method, order):
    x_0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    steps = [4, 8, 16, 32, 64]
    errors = []
    for n in steps:
        x = sl.integrate(_riccati, x_0, steps=n, method=method).x
        errors.append(float((x - x_0 / (1 + x_0)).abs().max()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.3, (method, slope, errors)


@pytest.mark.parametrize("method,per_step", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_nfe_is_exact_for_fixed_grids(method, per_step):
    calls = []

    def v(x, t):
        calls.append(t.shape)
        return -x

    traj = sl.integrate(v, torch.ones(3, 2), steps=7, method=method)
    assert traj.nfe == 7 * per_step == len(calls)
    assert all(shape == (3,) for shape in calls)


def test_dopri5_meets_its_tolerance_and_counts_evaluations():
    x_0 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    calls = []

    def v(x, t):
        calls.append(1)
        return _linear_ode(x, t)

    for tol in (1e-4, 1e-8):
        calls.clear()
        traj = sl.integrate(v, x_0, method="dopri5", atol=tol, rtol=tol)
        exact = _exact(x_0, 1.0)
        err = float((traj.x - exact).abs().max())
        # a global error within a small multiple of the local tolerance atol + rtol |x|
        assert err < 10 * (tol + tol * float(exact.abs().max()))
        assert traj.nfe == len(calls) > 0


@pytest.mark.parametrize("method", FIXED_METHODS + ("dopri5",))
def test_backward_integration_returns_to_the_start(method):
    x_0 = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    steps = None if method == "dopri5" else 400
    fwd = sl.integrate(_linear_ode, x_0, steps=steps, method=method, atol=1e-9, rtol=1e-9).x
    back = sl.integrate(_linear_ode, fwd, steps=steps, method=method, t_span=(1.0, 0.0), atol=1e-9, rtol=1e-9).x
    tol = 2e-2 if method == "euler" else 1e-6
    assert torch.allclose(back, x_0, atol=tol)


def test_keep_path_records_every_state():
    traj = sl.integrate(lambda x, t: torch.ones_like(x), torch.zeros(2, 1), steps=4, keep_path=True)
    assert traj.ts.tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert traj.xs[:, 0, 0].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    short = sl.integrate(lambda x, t: torch.ones_like(x), torch.zeros(2, 1), steps=4)
    assert short.xs.shape == (2, 2, 1)


def test_sample_returns_the_end_point():
    x_0 = torch.zeros(5, 2)
    out = sl.sample(lambda x, t: torch.ones_like(x), x_0, steps=3, method="rk4")
    assert torch.allclose(out, torch.ones(5, 2))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"steps": 0}, r"steps must be a positive integer, got 0"),
        ({"steps": -3}, r"got -3"),
        ({"steps": 10, "method": "rk5"}, r"unknown method 'rk5'; accepted: euler, midpoint, heun, rk4, dopri5"),
        ({"method": "euler"}, r"needs steps"),
        ({"steps": 10, "t_span": (0.0, 1.5)}, r"t_span must be two different times in \[0, 1\]"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.integrate(lambda x, t: x, torch.zeros(2, 2), **kwargs)
