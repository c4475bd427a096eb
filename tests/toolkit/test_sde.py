"""SDE sampling from a velocity field: the Euler–Maruyama samples follow the flow's marginals."""

import math

import pytest
import torch

import straightline as sl
from straightline.oracles import GaussianMixture
from straightline.sde import sde_drift, sde_sample

GM = GaussianMixture(means=[[2.0, 0.0], [-1.0, 1.5]], stds=[0.4, 0.6], weights=[0.6, 0.4])
TIMES = [0.25, 0.5, 0.75, 1.0]


def _marginal_sample(t: float, n: int, seed: int) -> torch.Tensor:
    """Exact draws of p_t = sum_k w_k N(t mu_k, (t^2 s_k^2 + (1 - t)^2) I)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.multinomial(GM.weights, n, replacement=True, generator=g)  # [n]
    std = torch.sqrt(t**2 * GM.stds[k] ** 2 + (1 - t) ** 2)  # [n]
    return t * GM.means[k] + std[:, None] * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _marginal_moments(t: float) -> tuple[torch.Tensor, torch.Tensor]:
    var = t**2 * GM.stds**2 + (1 - t) ** 2  # [K]
    m = t * GM.means  # [K, 2]
    mean = (GM.weights[:, None] * m).sum(0)
    second = sum(GM.weights[k] * (var[k] * torch.eye(2, dtype=torch.float64) + torch.outer(m[k], m[k])) for k in range(2))
    return mean, second - torch.outer(mean, mean)


def _run(diffusion, n=2000, steps=100, seed=0, field=GM):
    x_0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ts = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    traj = sde_sample(field, x_0, ts=ts, diffusion=diffusion, keep_path=True, generator=torch.Generator().manual_seed(seed + 1))
    return {t: traj.xs[round(t * steps)] for t in TIMES}, traj


def _check_marginal(x: torch.Tensor, t: float) -> None:
    """x [n, 2] against p_t: mean and covariance (closed form), the mass of each mode (posterior
    responsibilities averaged), and the average log-density E log p_t (vs a large exact sample)."""
    ones = torch.full((len(x),), t, dtype=torch.float64)
    mean, cov = _marginal_moments(t)
    assert torch.allclose(x.mean(0), mean, atol=0.1), (t, x.mean(0), mean)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.2), (t, torch.cov(x.T), cov)
    resp = GM._components(x, ones)[4].mean(0)  # [K]
    assert torch.allclose(resp, GM.weights, atol=0.035), (t, resp)
    exact = _marginal_sample(t, 20_000, 9)
    want = float(GM.log_prob(exact, torch.full((20_000,), t, dtype=torch.float64)).mean())
    got = float(GM.log_prob(x, ones).mean())
    assert abs(got - want) < 0.07, (t, got, want)


@pytest.mark.parametrize("diffusion", [1.0, lambda t: 1.5 * torch.sqrt(1 - t)], ids=["constant", "vanishing"])
def test_sde_samples_match_the_exact_marginal_at_every_time(diffusion):
    states, traj = _run(diffusion)
    assert traj.nfe == 100
    for t, x in states.items():
        _check_marginal(x, t)
    # and the samples are not the ODE's: the noise really moved them
    ode = sl.integrate(GM, traj.xs[0], steps=100).x
    assert float((ode - traj.x).norm(dim=1).mean()) > 0.1


def test_the_score_correction_is_what_keeps_the_marginals():
    # the same noise without the (g^2 / 2) score term spreads the samples: the check above fails
    def no_correction(x, t):
        return GM(x, t) - 0.5 * sl.convert.velocity_to_score(GM(x, t), x, t)  # cancels the correction for g = 1

    states, _ = _run(1.0, field=no_correction)
    with pytest.raises(AssertionError):
        _check_marginal(states[1.0], 1.0)


def test_single_gaussian_moments_in_closed_form():
    # data N(mu, s^2 I): p_t = N(t mu, (t^2 s^2 + (1 - t)^2) I); 8000 samples, one Gaussian
    oracle = GaussianMixture(means=[[1.0, -2.0, 0.5]], stds=[0.5])
    x_0 = torch.randn(8000, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ts = torch.linspace(0, 0.5, 51, dtype=torch.float64)  # stops at t = 0.5: samples p_0.5
    x = sde_sample(oracle, x_0, ts=ts, diffusion=2.0, generator=torch.Generator().manual_seed(5)).x
    assert torch.allclose(x.mean(0), 0.5 * oracle.means[0], atol=0.03)
    assert torch.allclose(x.var(0), torch.full((3,), 0.25 * 0.25 + 0.25, dtype=torch.float64), atol=0.025)


def test_zero_diffusion_is_the_euler_ode_and_the_drift_is_the_velocity_plus_score():
    x_0 = torch.randn(50, 2, dtype=torch.float64)
    ode = sl.integrate(GM, x_0, steps=20).x
    sde = sde_sample(GM, x_0, steps=20, diffusion=0.0).x
    assert torch.allclose(ode, sde, atol=1e-14)
    x, t = torch.randn(5, 2, dtype=torch.float64), torch.rand(5, dtype=torch.float64) * 0.9
    g = torch.full((5,), 0.7, dtype=torch.float64)
    assert torch.allclose(sde_drift(GM(x, t), x, t, g), GM(x, t) + 0.245 * GM.score(x, t), atol=1e-10)


def test_conditions_seeds_and_errors():
    def v(x, t, y=None):
        return y.expand_as(x)  # a constant velocity from a condition

    y = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a = sde_sample(v, torch.zeros(4, 2, dtype=torch.float64), steps=5, y=y, generator=gen()).x
    b = sde_sample(v, torch.zeros(4, 2, dtype=torch.float64), steps=5, y=y, generator=gen()).x
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])  # reproducible, and really stochastic
    with pytest.raises(ValueError, match=r"diffusion must be a number >= 0 or a callable"):
        sde_sample(GM, torch.zeros(2, 2), diffusion=-1.0)
    with pytest.raises(ValueError, match=r"ts must be a strictly increasing grid"):
        sde_sample(GM, torch.zeros(2, 2), ts=[0.0, 0.6, 0.5])
    with pytest.raises(ValueError, match=r"returned shape \[2, 1\]"):
        sde_sample(lambda x, t: x[:, :1], torch.zeros(2, 2), steps=2)
    with pytest.raises(ValueError, match=r"non-finite"):
        sde_sample(lambda x, t: x / 0.0 * 0.0, torch.ones(2, 2), steps=2)
    assert math.isfinite(float(sde_sample(GM, torch.zeros(2, 2), steps=2, diffusion=lambda t: 0.5).x.sum()))
