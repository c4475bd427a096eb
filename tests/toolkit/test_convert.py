"""Parameterisation conversions against the Gaussian-mixture oracle, float64 round trips, ends."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import straightline as sl
from straightline import convert
from straightline.oracles import GaussianMixture

GM = GaussianMixture(means=[[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], stds=[0.3, 0.5, 0.4], weights=[0.5, 0.3, 0.2])


def _points(n=200, seed=0, t_lo=0.02, t_hi=0.98):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64) * 2  # [n, 2]
    t = t_lo + (t_hi - t_lo) * torch.rand(n, generator=g, dtype=torch.float64)  # [n]
    return x, t


def _posterior_means(x, t):
    """E[x_1 | x_t = x] and E[x_0 | x_t = x] for the mixture, from per-component Gaussian
    conditioning written out here (independently of the oracle's velocity code):
    given component k, (x_1, x_t) is jointly Gaussian with Cov(x_1, x_t) = t s_k^2 I and
    Var(x_t) = (t^2 s_k^2 + (1 - t)^2) I; Cov(x_0, x_t) = (1 - t) I."""
    tt = t[:, None, None]  # [n, 1, 1]
    mu = GM.means.T[None]  # [1, 2, K]
    s2 = GM.stds[None, None] ** 2  # [1, 1, K]
    var = tt**2 * s2 + (1 - tt) ** 2  # [n, 1, K]
    diff = x[:, :, None] - tt * mu  # [n, 2, K]
    log_w = torch.log(GM.weights)[None] - 0.5 * (diff**2).sum(1) / var[:, 0] - torch.log(var[:, 0])  # [n, K] (D = 2)
    resp = torch.softmax(log_w, dim=1)[:, None]  # [n, 1, K]
    x1_hat = (resp * (mu + tt * s2 / var * diff)).sum(-1)  # [n, 2]
    x0_hat = (resp * ((1 - tt) / var * diff)).sum(-1)  # [n, 2]
    return x1_hat, x0_hat


def _autograd_score(x, t):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(GM.log_prob(x, t).sum(), x)
    return g


def test_velocity_is_x_plus_one_minus_t_score_over_t():
    x, t = _points()
    v = GM.velocity(x, t)
    score = _autograd_score(x, t)
    expected = (x + (1 - t)[:, None] * score) / t[:, None]
    assert torch.allclose(v, expected, atol=1e-9, rtol=0)
    assert torch.allclose(convert.score_to_velocity(score, x, t), v, atol=1e-9, rtol=0)
    assert float(v.abs().max()) > 1.0  # a non-trivial field, not all zeros


def test_every_conversion_matches_the_oracle():
    x, t = _points(seed=1)
    v = GM.velocity(x, t)  # [n, 2]
    score = _autograd_score(x, t)
    x1_hat, x0_hat = _posterior_means(x, t)
    # the posterior means reproduce x and v (a consistency check of the test's own formulas)
    assert torch.allclose((1 - t)[:, None] * x0_hat + t[:, None] * x1_hat, x, atol=1e-10)
    assert torch.allclose(x1_hat - x0_hat, v, atol=1e-10)
    tol = dict(atol=1e-9, rtol=0)
    assert torch.allclose(convert.velocity_to_x1(v, x, t), x1_hat, **tol)
    assert torch.allclose(convert.x1_to_velocity(x1_hat, x, t), v, **tol)
    assert torch.allclose(convert.velocity_to_noise(v, x, t), x0_hat, **tol)
    assert torch.allclose(convert.noise_to_velocity(x0_hat, x, t), v, **tol)
    assert torch.allclose(convert.velocity_to_score(v, x, t), score, **tol)
    assert torch.allclose(convert.score_to_velocity(score, x, t), v, **tol)
    # Tweedie for the noise: score = -E[x_0 | x_t] / (1 - t)
    assert torch.allclose(score, -x0_hat / (1 - t)[:, None], **tol)


@pytest.mark.parametrize("kind", ["velocity", "x1", "noise", "score"])
def test_wrapped_predictors_are_the_oracle_velocity(kind):
    x, t = _points(seed=2)

    def predictor(x, t, scale=1.0):
        x1_hat, x0_hat = _posterior_means(x, t)
        pred = {"velocity": GM.velocity(x, t), "x1": x1_hat, "noise": x0_hat, "score": _autograd_score(x, t)}[kind]
        return scale * pred

    v = convert.as_velocity(predictor, kind)
    assert torch.allclose(v(x, t), GM.velocity(x, t), atol=1e-9, rtol=0)
    # extra arguments reach the model (here they break the agreement, so they were really used)
    assert not torch.allclose(v(x, t, scale=2.0), GM.velocity(x, t), atol=1e-3)
    # the reverse wrapper turns the oracle's velocity back into the same predictor
    back = convert.velocity_as(GM.velocity, kind)
    assert torch.allclose(back(x, t), predictor(x, t), atol=1e-9, rtol=0)
    assert kind in repr(v)


def test_a_noise_model_samples_like_the_velocity_field():
    """Sampling with the noise parameterisation from t = eps reaches the same points as the
    velocity field itself (same ODE once converted)."""
    eps = 1e-3

    def noise_model(x, t):
        return _posterior_means(x, t)[1]

    x_0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    kw = dict(steps=200, method="rk4", t_span=(eps, 1.0))
    a = sl.sample(convert.as_velocity(noise_model, "noise"), x_0, **kw)
    b = sl.sample(GM.velocity, x_0, **kw)
    assert torch.allclose(a, b, atol=1e-8)
    assert float((a - x_0).abs().mean()) > 0.5  # the samples really moved


# ---- float64 round trips (property-based) -------------------------------------------------------

shapes = st.sampled_from([(3, 2), (2, 1, 4, 4), (5, 7), (1, 3)])
seeds = st.integers(0, 2**31 - 1)


def _draw(shape, seed, t_lo, t_hi, n=2):
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(*shape, generator=g, dtype=torch.float64) for _ in range(n)]
    t = t_lo + (t_hi - t_lo) * torch.rand(shape[0], generator=g, dtype=torch.float64)  # [B]
    return tensors, t


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=seeds, t_lo=st.sampled_from([0.001, 0.3, 0.9]), t_hi=st.sampled_from([0.1, 0.7, 0.999]))
def test_round_trips_are_the_identity(shape, seed, t_lo, t_hi):
    (x, p), t = _draw(shape, seed, min(t_lo, t_hi), max(t_lo, t_hi))
    c = convert
    tol = dict(atol=1e-9, rtol=1e-9)
    # from a velocity and back
    assert torch.allclose(c.x1_to_velocity(c.velocity_to_x1(p, x, t), x, t), p, **tol)
    assert torch.allclose(c.noise_to_velocity(c.velocity_to_noise(p, x, t), x, t), p, **tol)
    assert torch.allclose(c.score_to_velocity(c.velocity_to_score(p, x, t), x, t), p, **tol)
    # from each other kind and back
    assert torch.allclose(c.velocity_to_x1(c.x1_to_velocity(p, x, t), x, t), p, **tol)
    assert torch.allclose(c.velocity_to_noise(c.noise_to_velocity(p, x, t), x, t), p, **tol)
    assert torch.allclose(c.velocity_to_score(c.score_to_velocity(p, x, t), x, t), p, **tol)
    # around the whole cycle x1 -> v -> noise -> v -> score -> v -> x1
    v = c.x1_to_velocity(p, x, t)
    v = c.noise_to_velocity(c.velocity_to_noise(v, x, t), x, t)
    v = c.score_to_velocity(c.velocity_to_score(v, x, t), x, t)
    assert torch.allclose(c.velocity_to_x1(v, x, t), p, **tol)
    # the generic dispatchers agree with the named functions
    for kind in convert.KINDS:
        assert torch.allclose(c.to_velocity(c.from_velocity(p, x, t, kind), x, t, kind), p, **tol)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=seeds, t=st.floats(0.0, 1.0))
def test_a_single_pair_is_recovered_from_its_conditional_velocity(shape, seed, t):
    """For one pair (x_0, x_1) the conditional velocity x_1 - x_0 at x_t = (1-t) x_0 + t x_1 gives
    back x_1 and x_0 exactly, at every t including both ends (those maps never divide)."""
    (x_0, x_1), _ = _draw(shape, seed, 0.0, 1.0)
    tt = torch.full((shape[0],), t, dtype=torch.float64)
    x_t, u_t = sl.LinearPath().interpolate(x_0, x_1, tt)
    assert torch.allclose(convert.velocity_to_x1(u_t, x_t, tt), x_1, atol=1e-12)
    assert torch.allclose(convert.velocity_to_noise(u_t, x_t, tt), x_0, atol=1e-12)


# ---- the singular ends -------------------------------------------------------------------------


def test_singular_ends_raise_without_a_clamp():
    x = torch.randn(4, 2, dtype=torch.float64)
    p = torch.randn(4, 2, dtype=torch.float64)
    ones, zeros = torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"1 - t.*singular at t = 1"):
        convert.x1_to_velocity(p, x, ones, eps=0)
    with pytest.raises(ValueError, match=r"singular at t = 1"):
        convert.velocity_to_score(p, x, ones, eps=0)
    with pytest.raises(ValueError, match=r"singular at t = 0"):
        convert.noise_to_velocity(p, x, zeros, eps=0)
    with pytest.raises(ValueError, match=r"singular at t = 0"):
        convert.score_to_velocity(p, x, zeros, eps=0)
    # the other ends are regular with eps = 0
    assert torch.isfinite(convert.x1_to_velocity(p, x, zeros, eps=0)).all()
    assert torch.isfinite(convert.score_to_velocity(p, x, ones, eps=0)).all()


def test_the_clamp_is_exactly_max_t_eps():
    x = torch.randn(3, 2, dtype=torch.float64)
    p = torch.randn(3, 2, dtype=torch.float64)
    t = torch.tensor([0.0, 1e-4, 0.5], dtype=torch.float64)
    eps = 1e-3
    got = convert.noise_to_velocity(p, x, t, eps=eps)
    expected = (x - p) / torch.tensor([[eps], [eps], [0.5]], dtype=torch.float64)
    assert torch.equal(got, expected)
    got = convert.x1_to_velocity(p, x, 1 - t, eps=eps)
    assert torch.allclose(got, (p - x) / torch.tensor([[eps], [eps], [0.5]], dtype=torch.float64), rtol=1e-12)


def test_the_regular_ends_are_exact_for_the_oracle():
    x, _ = _points(seed=3)
    n = x.shape[0]
    zeros, ones = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    # t = 0: p_0 = N(0, I), so the score is -x whatever the velocity
    assert torch.allclose(convert.velocity_to_score(GM.velocity(x, zeros), x, zeros), -x, atol=1e-12)
    assert torch.allclose(GM.score(x, zeros), -x, atol=1e-12)
    # t = 1: v_1(x) = x - E[x_0] = x, recovered from the score without any clamp
    v1 = convert.score_to_velocity(GM.score(x, ones), x, ones, eps=0)
    assert torch.allclose(v1, GM.velocity(x, ones), atol=1e-10)
    assert torch.allclose(v1, x, atol=1e-10)


def test_bad_arguments_are_named():
    x = torch.randn(4, 2)
    t = torch.full((4,), 0.5)
    with pytest.raises(ValueError, match=r"unknown parameterisation kind 'eps'; accepted: velocity, x1, noise, score"):
        convert.as_velocity(lambda x, t: x, "eps")
    with pytest.raises(ValueError, match=r"eps must be in \[0, 0.5\), got 0.7"):
        convert.noise_to_velocity(x, x, t, eps=0.7)
    with pytest.raises(ValueError, match=r"prediction has shape \[4, 3\], expected \[4, 2\]"):
        convert.velocity_to_x1(torch.randn(4, 3), x, t)
    with pytest.raises(ValueError, match=r"t must have shape \[4\]"):
        convert.velocity_to_x1(x, x, torch.full((4, 1), 0.5))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        convert.velocity_to_x1(x, x, torch.full((4,), 1.5))
