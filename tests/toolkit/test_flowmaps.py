"""Flow maps against exact answers: the Gaussian flow map in closed form and the Gaussian-mixture oracle.

Convention under test: noise at t = 0, data at t = 1, X_{s,t}(x) = x + (t - s) u(x, s, t) for s <= t.
"""

import pytest
import torch
from torch.func import jvp

from straightline import flowmaps
from straightline.flowmaps import GaussianFlowMap, average_velocity, meanflow_target
from straightline.oracles import GaussianMixture

F64 = torch.float64


def _points(n=256, seed=0):
    """x [n, 2], s [n], t [n] with 0 <= s <= t <= 1, float64, including the corners s = 0, t = 1."""
    g = torch.Generator().manual_seed(seed)
    x = 1.5 * torch.randn(n, 2, generator=g, dtype=F64)
    a, b = torch.rand(2, n, generator=g, dtype=F64).sort(dim=0).values
    a[:4], b[:4] = torch.tensor([0.0, 0.0, 0.3, 1.0], dtype=F64), torch.tensor([1.0, 0.0, 0.3, 1.0], dtype=F64)
    return x, a, b


def _mixture():
    return GaussianMixture([[2.0, 0.0], [-1.0, 1.5], [0.0, -2.0]], [0.3, 0.5, 0.4], [0.2, 0.5, 0.3])


# ---------------------------------------------------------------- closed forms


def test_gaussian_flow_map_is_the_flow_of_the_mixture_oracle():
    exact = GaussianFlowMap((1.5, -0.5), 0.5)
    oracle = GaussianMixture([[1.5, -0.5]], [0.5])
    x, s, t = _points()
    with torch.no_grad():
        assert torch.allclose(exact.velocity(x, s), oracle.velocity(x, s), atol=1e-12)
        # integrating the oracle's velocity from s to t lands where the closed-form map says
        moved = x + (t - s)[:, None] * average_velocity(oracle, x, s, t, steps=100)
        assert torch.allclose(moved, exact.map(x, s, t), atol=1e-9)
        assert torch.allclose(exact.map(x, s, t), x + (t - s)[:, None] * exact(x, s, t), atol=1e-12)


@pytest.mark.parametrize("method, order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_average_velocity_converges_at_least_at_the_solver_order(method, order):
    exact = GaussianFlowMap((1.5, -0.5), 0.5)
    x, s, t = _points()
    with torch.no_grad():
        target = exact(x, s, t)
        e1 = (average_velocity(exact.velocity, x, s, t, steps=32, method=method) - target).abs().max()
        e2 = (average_velocity(exact.velocity, x, s, t, steps=64, method=method) - target).abs().max()
    assert e1 / e2 >= 2 ** (order - 0.3), (e1, e2)  # halving the step divides the error by >= ~2^order
    if method == "rk4":
        with torch.no_grad():
            assert (average_velocity(exact.velocity, x, s, t) - target).abs().max() < 1e-8


def test_average_velocity_on_the_diagonal_is_the_velocity_and_composes():
    mix = _mixture()
    x, s, t = _points()
    with torch.no_grad():
        assert torch.allclose(average_velocity(mix, x, s, s, steps=3), mix(x, s), atol=1e-13, rtol=0)
        r = (s + t) / 2
        first = x + (r - s)[:, None] * average_velocity(mix, x, s, r, steps=100)
        two_jumps = first + (t - r)[:, None] * average_velocity(mix, first, r, t, steps=100)
        one_jump = x + (t - s)[:, None] * average_velocity(mix, x, s, t, steps=200)
    assert torch.allclose(two_jumps, one_jump, atol=1e-8)


# ------------------------------------------------------- the MeanFlow identity


def test_meanflow_target_equals_the_exact_gaussian_map():
    exact = GaussianFlowMap((1.5, -0.5), 0.5)
    x, s, t = _points()
    with torch.no_grad():
        u, v = exact(x, s, t), exact.velocity(x, s)
    assert (meanflow_target(exact, x, s, t, v) - u).abs().max() < 1e-12
    assert (meanflow_target(exact, x, s, t, exact.velocity) - u).abs().max() < 1e-12  # v as a field


def test_meanflow_target_equals_the_mixture_flow_map_to_1e_6():
    mix = _mixture()
    x, s, t = _points(64)

    def u(x, s, t):  # the exact average velocity of the mixture flow, by rk4 in float64
        return average_velocity(mix, x, s, t, steps=100)

    target = meanflow_target(u, x, s, t, mix)
    assert (target - u(x, s, t).detach()).abs().max() < 1e-6
    assert not target.requires_grad


def _wrong_targets(u, x, s, t, v):
    """The mistakes a port from MeanFlow's paper (noise at 1, r <= t) makes in this convention."""
    ones, zeros = torch.ones_like(s), torch.zeros_like(t)
    _, d_s = jvp(u, (x, s, t), (v, ones, zeros))
    _, d_t = jvp(u, (x, s, t), (v, zeros, ones))
    _, d_back = jvp(u, (x, s, t), (v, -ones, zeros))
    gap = (t - s)[:, None]
    return {
        "paper's minus sign": v - gap * d_s,
        "derivative in t instead of s": v + gap * d_t,
        "time tangent -1": v + gap * d_back,
        "gap t - s taken as s - t": v - gap * d_s,
    }


@pytest.mark.parametrize("flow", ["gaussian", "mixture"])
def test_a_sign_or_convention_error_fails_the_identity(flow):
    if flow == "gaussian":
        exact = GaussianFlowMap((1.5, -0.5), 0.5)
        u, field = exact, exact.velocity
    else:
        mix = _mixture()
        u, field = (lambda x, s, t: average_velocity(mix, x, s, t, steps=50)), mix
    x, s, t = _points(32)
    v = field(x, s).detach()
    truth = u(x, s, t).detach()
    assert (meanflow_target(u, x, s, t, v) - truth).abs().max() < 1e-5
    for name, wrong in _wrong_targets(u, x, s, t, v).items():
        assert (wrong.detach() - truth).abs().max() > 0.05, name


# ------------------------------------------------------ sampling and semigroup


class _Counting(torch.nn.Module):
    def __init__(self, u):
        super().__init__()
        self.u, self.calls = u, 0

    def forward(self, x, s, t):
        self.calls += 1
        return self.u(x, s, t)


@pytest.mark.parametrize("steps", [1, 2, 3, 8])
def test_sample_makes_exactly_steps_evaluations_and_lands_on_the_exact_map(steps):
    exact = GaussianFlowMap((1.5, -0.5), 0.5)
    counted = _Counting(exact)
    x_0 = torch.randn(500, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    traj = flowmaps.sample(counted, x_0, steps=steps, keep_path=True)
    assert traj.nfe == steps == counted.calls
    assert traj.xs.shape == (steps + 1, 500, 2) and traj.ts.shape == (steps + 1,)
    ones = torch.ones(500, dtype=F64)
    with torch.no_grad():
        assert torch.allclose(traj.x, exact.map(x_0, 0 * ones, ones), atol=1e-12)
    short = flowmaps.sample(exact, x_0, steps=steps)
    assert short.xs.shape == (2, 500, 2) and torch.equal(short.x, traj.x)


def test_shortcut_self_consistency_holds_for_the_exact_map_and_fails_for_euler():
    exact = GaussianFlowMap((1.5, -0.5), 0.5)
    x, s, t = _points()
    mid = (s + t) / 2
    with torch.no_grad():
        first = exact(x, s, mid)
        second = exact(x + (mid - s)[:, None] * first, mid, t)
        assert torch.allclose((first + second) / 2, exact(x, s, t), atol=1e-12)

        def euler(x, s, t):  # a velocity field used as a flow map: one Euler step per jump
            return exact.velocity(x, s)

        first = euler(x, s, mid)
        second = euler(x + (mid - s)[:, None] * first, mid, t)
        assert ((first + second) / 2 - euler(x, s, t)).abs().max() > 0.05


# ------------------------------------------------------------------ bad input


def test_bad_times_and_shapes_are_named():
    exact = GaussianFlowMap()
    x = torch.randn(4, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"s must be <= t .*s = 0\.8 > t = 0\.2"):
        meanflow_target(exact, x, 0.8, 0.2, exact.velocity)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\], got values in \[1\.5"):
        average_velocity(exact.velocity, x, 0.0, 1.5)
    with pytest.raises(ValueError, match=r"s must have shape \[4\]"):
        average_velocity(exact.velocity, x, torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"x_0 must be a non-empty floating-point batch \[B, \.\.\.\] \(at least 2 dims\), got torch.float32 \[2\]"):
        flowmaps.sample(exact, torch.randn(2), steps=1)
    with pytest.raises(ValueError, match=r"v must be a tensor shaped like x \[4, 2\]"):
        meanflow_target(exact, x, 0.0, 1.0, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"t_span must be two times 0 <= t_span\[0\] < t_span\[1\] <= 1"):
        flowmaps.sample(exact, x, t_span=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"steps must be a positive integer, got 0"):
        flowmaps.sample(exact, x, steps=0)
    with pytest.raises(ValueError, match=r"unknown method 'dopri5'; accepted: euler, midpoint, heun, rk4"):
        average_velocity(exact.velocity, x, 0.0, 1.0, method="dopri5")
    with pytest.raises(ValueError, match=r"u\(x, s, t\) must return a tensor shaped like x \[4, 2\], got \[4, 3\]"):
        flowmaps.sample(lambda x, s, t: torch.zeros(4, 3, dtype=F64), x)


def test_a_model_with_the_wrong_signature_is_refused():
    import straightline as sl

    x = torch.randn(8, 2)
    with pytest.raises(ValueError, match=r"looks like a velocity field v\(x, t, y\).*FlowMapMLP"):
        flowmaps.sample(sl.models.MLP(dim=2), x)
    with pytest.raises(ValueError, match=r"must take three arguments u\(x \[B, \.\.\.\], s \[B\], t \[B\]\)"):
        flowmaps.meanflow_loss(lambda x, t: x, x)
    with pytest.raises(ValueError, match=r"u must be a flow map: a callable u\(x, s, t\), got int"):
        flowmaps.lsd_loss(3, x)
    with pytest.raises(ValueError, match=r"unknown method 'ddpm'; accepted: meanflow, shortcut, lsd"):
        flowmaps.train(sl.models.FlowMapMLP(2, 16, 1), "moons", method="ddpm", steps=1)
    with pytest.raises(ValueError, match=r"unknown option\(s\) max_steps for method 'lsd'; accepted: noise_fn, diagonal"):
        flowmaps.train(sl.models.FlowMapMLP(2, 16, 1), "moons", method="lsd", steps=1, max_steps=8)
    with pytest.raises(ValueError, match=r"diagonal must be a number in \[0, 1\], got 1\.5"):
        flowmaps.shortcut_loss(sl.models.FlowMapMLP(2, 16, 1), x, diagonal=1.5)
    with pytest.raises(ValueError, match=r"max_steps must be a power of two >= 2 .*got 12"):
        flowmaps.shortcut_loss(sl.models.FlowMapMLP(2, 16, 1), x, max_steps=12)
    with pytest.raises(ValueError, match=r"model must take three arguments"):
        flowmaps.train(torch.nn.Linear(2, 2), "moons", steps=1)
