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
