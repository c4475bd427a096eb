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


# --- time grids, chunking, conditions, errors -------------------------------------------------


@pytest.mark.parametrize("method,per_step", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_a_time_grid_works_for_every_fixed_method_and_counts_nfe(method, per_step):
    # a non-uniform grid: with fine enough steps every method reaches the exact end point
    ts = torch.linspace(0, 1, 201, dtype=torch.float64) ** 2  # [201], crowded near t = 0
    x_0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    traj = sl.integrate(_riccati, x_0, ts=ts, method=method, keep_path=True)
    assert traj.nfe == 200 * per_step
    assert torch.equal(traj.ts, ts) and traj.xs.shape == (201, 1, 2)
    tol = {"euler": 1e-2, "midpoint": 1e-4, "heun": 1e-4, "rk4": 1e-9}[method]
    assert torch.allclose(traj.x, x_0 / (1 + x_0), atol=tol, rtol=0)


def test_a_uniform_grid_equals_steps_bit_for_bit():
    x_0 = torch.randn(5, 2, dtype=torch.float64)
    for method in FIXED_METHODS:
        by_steps = sl.integrate(_linear_ode, x_0, steps=8, method=method).x
        by_grid = sl.integrate(_linear_ode, x_0, ts=torch.linspace(0, 1, 9, dtype=torch.float64), method=method).x
        assert torch.equal(by_steps, by_grid), method


def test_a_grid_steps_exactly_where_it_says():
    # Euler on dx/dt = 1 with the grid [0, 0.1, 0.5, 1] passes through x_0 + t at every grid time
    ts = [0.0, 0.1, 0.5, 1.0]
    traj = sl.integrate(lambda x, t: torch.ones_like(x), torch.zeros(2, 1), ts=ts, keep_path=True)
    assert torch.allclose(traj.xs[:, 0, 0], torch.tensor(ts))


def test_a_decreasing_grid_integrates_backwards():
    x_1 = torch.tensor([[0.7, -0.2]], dtype=torch.float64)
    ts = torch.linspace(1, 0, 101, dtype=torch.float64)
    x_0 = sl.integrate(_linear_ode, x_1, ts=ts, method="rk4").x
    assert torch.allclose(x_0, x_1 / math.exp(0.0), atol=1e-10)  # exp(t^2 - t) is 1 at both ends


def test_sample_takes_a_grid_and_dopri5_records_at_it():
    x_0 = torch.randn(4, 2, dtype=torch.float64)
    ts = [0.0, 0.3, 1.0]
    assert torch.equal(sl.sample(_linear_ode, x_0, ts=ts), sl.integrate(_linear_ode, x_0, ts=ts).x)
    traj = sl.integrate(_linear_ode, x_0, ts=ts, method="dopri5", keep_path=True, atol=1e-10, rtol=1e-10)
    assert torch.allclose(traj.xs[1], _exact(x_0, 0.3), atol=1e-8)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"ts": [0.0, 0.5, 0.4, 1.0]}, r"strictly increasing or strictly decreasing"),
        ({"ts": [0.0, 0.5, 0.5, 1.0]}, r"strictly increasing"),
        ({"ts": [0.0, 1.5]}, r"times in \[0, 1\], got \[0.0, 1.5\]"),
        ({"ts": [0.0]}, r"at least 2 finite times"),
        ({"ts": [0.0, 0.5, 1.0], "steps": 3}, r"steps=3 disagrees with ts, a grid of 2 steps"),
        ({"ts": [0.0, 0.5, 0.9], "t_span": (0.0, 1.0)}, r"ts must span t_span=\(0.0, 1.0\): it runs from 0 to 0.9"),
        ({"steps": 4, "batch_size": 0}, r"batch_size must be a positive integer, got 0"),
    ],
)
def test_bad_grids_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.integrate(lambda x, t: x, torch.zeros(2, 2), **kwargs)


def test_sample_refuses_a_grid_that_does_not_reach_the_data():
    with pytest.raises(ValueError, match=r"ts must span t_span=\(0.0, 1.0\)"):
        sl.sample(lambda x, t: x, torch.zeros(2, 2), ts=[0.0, 0.5])


@pytest.mark.parametrize("method", FIXED_METHODS)
def test_chunked_integration_equals_the_whole_batch(method):
    oracle = sl.oracles.GaussianMixture([[2.0, 0.0], [-1.0, 1.0]], [0.3, 0.5])
    x_0 = torch.randn(103, 2, dtype=torch.float64)
    whole = sl.integrate(oracle, x_0, steps=6, method=method, keep_path=True)
    chunked = sl.integrate(oracle, x_0, steps=6, method=method, keep_path=True, batch_size=10)
    assert torch.equal(whole.xs, chunked.xs) and whole.nfe == chunked.nfe
    model = sl.models.MLP(dim=2, hidden=32, num_classes=3).eval()
    y = torch.arange(103) % 3
    z = torch.randn(103, 2)
    a = sl.sample(model, z, steps=5, method=method, y=y)
    b = sl.sample(model, z, steps=5, method=method, y=y, batch_size=16)  # y is chunked with the samples
    assert torch.allclose(a, b, atol=1e-6, rtol=0)


def test_keyword_conditions_reach_the_model():
    seen = []

    def v(x, t, y=None, scale=1.0):
        seen.append((y.shape, scale))
        return scale * y.to(x.dtype)[:, None].expand_as(x)

    y = torch.tensor([1, 2, 3])
    x = sl.sample(v, torch.zeros(3, 2), steps=4, y=y, scale=2.0)
    assert torch.allclose(x, 2.0 * y[:, None].float().expand(3, 2))
    assert seen == [((3,), 2.0)] * 4


def test_numpy_inputs_are_accepted_in_the_models_dtype():
    model = sl.models.MLP(dim=2, hidden=16, num_classes=2).eval()
    z = np.random.default_rng(0).standard_normal((5, 2))  # float64
    y = np.array([0, 1, 0, 1, 1])
    x = sl.sample(model, z, steps=3, y=y)
    assert x.dtype == torch.float32
    assert torch.allclose(x, sl.sample(model, torch.from_numpy(z).float(), steps=3, y=torch.from_numpy(y)))


def test_an_output_of_the_wrong_shape_fails_instead_of_broadcasting():
    with pytest.raises(ValueError, match=r"returned shape \[4, 1\] for x of shape \[4, 2\]"):
        sl.sample(lambda x, t: x[:, :1], torch.zeros(4, 2), steps=2)
    with pytest.raises(ValueError, match=r"returned shape \[4\]"):
        sl.integrate(lambda x, t: t, torch.zeros(4, 2), steps=2, method="rk4")


def test_a_forward_t_x_model_gets_a_clear_error():
    class Swapped(torch.nn.Module):
        def forward(self, t, x):
            return x

    with pytest.raises(ValueError, match=r"first argument is named 't'.*lambda x, t"):
        sl.sample(Swapped(), torch.zeros(4, 2), steps=2)

    net = torch.nn.Linear(3, 2)  # expects (x, t) concatenated: called with t first it breaks inside

    def swapped(a, b):
        return net(torch.cat([a[:, None], b], dim=1))

    with pytest.raises(ValueError, match=r"failed on its first call v\(x \[4, 2\], t \[4\]\)"):
        sl.sample(swapped, torch.zeros(4, 2), steps=2)


def test_nan_in_the_output_is_a_clear_error():
    with pytest.raises(ValueError, match=r"end state .* contains 8 non-finite values"):
        sl.sample(lambda x, t: x * float("nan"), torch.ones(4, 2), steps=3)
