"""Path invariants (property-based): end points, u_t = d x_t / dt, broadcasting; time adapters."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import straightline as sl
from straightline import timesteps

PATHS = [sl.LinearPath(), sl.CosinePath(), sl.VPPath()]
shapes = st.sampled_from([(3, 2), (2, 1, 4, 4), (5, 7), (1, 3, 2)])
seeds = st.integers(0, 2**31 - 1)


def _pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(*shape, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("path", PATHS, ids=repr)
@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds)
def test_end_points(path, shape, seed):
    x_0, x_1 = _pair(shape, seed)
    b = shape[0]
    at0 = path.sample(x_0, x_1, torch.zeros(b, dtype=torch.float64)).x_t
    at1 = path.sample(x_0, x_1, torch.ones(b, dtype=torch.float64)).x_t
    assert torch.allclose(at1, x_1, atol=1e-12)
    if isinstance(path, sl.VPPath):
        # diffusion never quite reaches pure noise: x_t(0) = alpha_0 x_1 + sigma_0 x_0, alpha_0 tiny
        a0 = float(path.alpha(torch.tensor(0.0, dtype=torch.float64)))
        assert a0 < 0.01
        assert torch.allclose(at0, a0 * x_1 + math.sqrt(1 - a0 * a0) * x_0, atol=1e-12)
    else:
        assert torch.allclose(at0, x_0, atol=1e-12)


@pytest.mark.parametrize("path", PATHS, ids=repr)
@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds, t=st.floats(0.02, 0.98))
def test_velocity_is_the_time_derivative(path, shape, seed, t):
    x_0, x_1 = _pair(shape, seed)
    b = shape[0]
    h = 1e-6
    tt = torch.full((b,), t, dtype=torch.float64)
    s = path.sample(x_0, x_1, tt)
    fd = (path.sample(x_0, x_1, tt + h).x_t - path.sample(x_0, x_1, tt - h).x_t) / (2 * h)
    assert torch.allclose(s.u_t, fd, rtol=1e-5, atol=1e-5)
    assert s.x_t.shape == x_0.shape and s.t is tt


def test_linear_path_values():
    s = sl.LinearPath().sample(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 2.0]]), torch.tensor([0.3]))
    assert torch.allclose(s.x_t, torch.tensor([[0.3, 0.6]]))
    assert torch.allclose(s.u_t, torch.tensor([[1.0, 2.0]]))


def test_each_sample_gets_its_own_time():
    x_0 = torch.zeros(2, 1, 2, 2)
    x_1 = torch.ones(2, 1, 2, 2)
    s = sl.LinearPath().sample(x_0, x_1, torch.tensor([0.25, 0.75]))
    assert torch.all(s.x_t[0] == 0.25) and torch.all(s.x_t[1] == 0.75)


@pytest.mark.parametrize(
    "t,match",
    [
        (torch.tensor([0.5]), r"t must have shape \[2\] \(one time per sample\), got \[1\]"),
        (torch.tensor([[0.5], [0.5]]), r"got \[2, 1\]"),
        (torch.tensor([0.5, 1.5]), r"t must lie in \[0, 1\], got values in \[0.5, 1.5\]"),
        (torch.tensor([-0.1, 0.5]), r"t must lie in \[0, 1\]"),
    ],
)
def test_bad_times_are_named(t, match):
    with pytest.raises(ValueError, match=match):
        sl.LinearPath().sample(torch.zeros(2, 3), torch.zeros(2, 3), t)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"x_0 and x_1 must have the same shape, got \[2, 3\] and \[2, 4\]"):
        sl.CosinePath().sample(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_time_convention_round_trip(values):
    t = torch.tensor(values, dtype=torch.float64)
    assert torch.allclose(timesteps.sigma_to_t(timesteps.t_to_sigma(t)), t, rtol=0, atol=1e-15)
    assert torch.allclose(timesteps.t_to_sigma(t), 1 - t)


def test_sigma_convention_model_adapter():
    # a sigma-convention model of the straight path predicts noise - data; ours predicts data - noise
    data, noise = torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, 0.5]])

    def f(x, sigma):  # exact for this single pair
        return (noise - data).expand_as(x)

    v = timesteps.velocity_from_sigma_model(f)
    t = torch.tensor([0.3])
    assert torch.allclose(v(sl.LinearPath().sample(noise, data, t).x_t, t), data - noise)
    end = sl.sample(v, noise, steps=1)
    assert torch.allclose(end, data)


# --- Schrödinger-bridge CFM: the Brownian-bridge path ------------------------------------------


def _bridge_pairs(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_0 = torch.randn(n, 3, generator=g, dtype=torch.float64)
    x_1 = torch.randn(n, 3, generator=g, dtype=torch.float64) + 2
    eps = torch.randn(n, 3, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.05
    return x_0, x_1, eps, t


def test_bridge_target_is_the_time_derivative_at_fixed_noise():
    path = sl.BrownianBridgePath(sigma=0.7)
    x_0, x_1, eps, t = _bridge_pairs()
    _, u_t = path.interpolate(x_0, x_1, t, eps)
    h = 1e-6
    up, _ = path.interpolate(x_0, x_1, t + h, eps)
    down, _ = path.interpolate(x_0, x_1, t - h, eps)
    assert torch.allclose(u_t, (up - down) / (2 * h), atol=1e-7)


def test_bridge_matches_the_sb_cfm_formulas():
    # Tong et al. 2023: x_t = mu_t + sigma sqrt(t(1-t)) eps, u_t = (1-2t)/(2t(1-t)) (x_t - mu_t) + x_1 - x_0
    sigma = 0.4
    x_0, x_1, eps, t = _bridge_pairs(seed=1)
    x_t, u_t = sl.BrownianBridgePath(sigma).interpolate(x_0, x_1, t, eps)
    tb = t[:, None]
    mu = (1 - tb) * x_0 + tb * x_1
    assert torch.allclose(x_t, mu + sigma * torch.sqrt(tb * (1 - tb)) * eps, atol=1e-14)
    assert torch.allclose(u_t, (1 - 2 * tb) / (2 * tb * (1 - tb)) * (x_t - mu) + x_1 - x_0, atol=1e-12)


def test_bridge_marginal_statistics_and_sigma_zero_is_the_line():
    path = sl.BrownianBridgePath(sigma=0.8)
    n = 200_000
    x_0, x_1 = torch.zeros(n, 1, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64)
    t = torch.full((n,), 0.3, dtype=torch.float64)
    torch.manual_seed(0)
    s = path.sample(x_0, x_1, t)
    assert abs(float(s.x_t.mean()) - 0.3) < 0.005
    assert abs(float(s.x_t.std()) - 0.8 * math.sqrt(0.21)) < 0.005
    x0, x1, eps, tt = _bridge_pairs(seed=2)
    line = sl.LinearPath().interpolate(x0, x1, tt)
    flat = sl.BrownianBridgePath(0.0).interpolate(x0, x1, tt, eps)
    assert all(torch.allclose(a, b, atol=1e-15) for a, b in zip(line, flat))


def test_the_bridge_target_regresses_to_the_velocity_of_its_marginal():
    # x_0 ~ N(0, I), x_1 = a fixed point c: x_t ~ N(t c, s_t^2 I), s_t^2 = (1-t)^2 + sigma^2 t (1-t).
    # The least-squares fit of u_t on x_t must be the marginal velocity c + (s_t'/s_t)(x - t c):
    # the flow whose marginals are those of the bridge (the SB-CFM target is correct, not just plausible).
    sigma, t0, n = 0.9, 0.35, 400_000
    c = torch.tensor([1.5, -0.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    x_0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x_t, u_t = sl.BrownianBridgePath(sigma).interpolate(x_0, c.expand(n, 2), torch.full((n,), t0, dtype=torch.float64), eps)
    design = torch.cat([x_t, torch.ones(n, 1, dtype=torch.float64)], 1)  # [n, 3]
    coef = torch.linalg.lstsq(design, u_t).solution  # [3, 2]
    s2 = (1 - t0) ** 2 + sigma**2 * t0 * (1 - t0)
    ratio = (-2 * (1 - t0) + sigma**2 * (1 - 2 * t0)) / (2 * s2)
    assert torch.allclose(coef[:2], ratio * torch.eye(2, dtype=torch.float64), atol=0.01)
    assert torch.allclose(coef[2], c - ratio * t0 * c, atol=0.01)


def test_bridge_bad_sigma_is_named():
    with pytest.raises(ValueError, match=r"sigma must be a finite number >= 0 .*got -0.1"):
        sl.BrownianBridgePath(sigma=-0.1)
