"""Log-likelihood by divergence integration against closed forms, the mixture oracle, and itself."""

import copy
import math

import numpy as np
import pytest
import torch

import straightline as sl
from straightline.likelihood import divergence, log_prob
from straightline.oracles import GaussianMixture

MU = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
S = 0.5


def gaussian_velocity(x, t):
    """The exact marginal velocity of the linear path for data N(MU, S^2 I).

    p_t = N(t MU, sigma_t^2 I) with sigma_t^2 = t^2 S^2 + (1 - t)^2, and the flow moves each point
    at fixed standardised position: v = MU + (sigma_t' / sigma_t)(x - t MU), where
    sigma_t sigma_t' = t S^2 - (1 - t)."""
    t = t[:, None]  # [B, 1]
    var = t**2 * S**2 + (1 - t) ** 2
    return MU + (t * S**2 - (1 - t)) / var * (x - t * MU)


def gaussian_log_density(x):
    d = x.shape[1]
    return -0.5 * ((x - MU) ** 2).sum(1) / S**2 - 0.5 * d * math.log(2 * math.pi * S**2)


def _gaussian_points(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return MU + 1.5 * S * torch.randn(n, 3, generator=g, dtype=torch.float64)  # [n, 3], some in the tails


def test_gaussian_flow_matches_the_closed_form_density():
    x = _gaussian_points()
    exact = gaussian_log_density(x)
    lp = log_prob(gaussian_velocity, x, steps=50, method="rk4")
    err = float((lp - exact).abs().max())
    assert err < 1e-3, err
    assert lp.dtype == torch.float64 and lp.shape == (200,)
    # the answer is not the base density alone: the divergence term matters by many nats
    base = -0.5 * (x**2).sum(1) - 1.5 * math.log(2 * math.pi)
    assert float((base - exact).abs().mean()) > 3


def test_dopri5_and_the_fixed_grid_methods_converge_to_the_closed_form():
    x = _gaussian_points(50, seed=1)
    exact = gaussian_log_density(x)
    assert float((log_prob(gaussian_velocity, x, method="dopri5", atol=1e-8, rtol=1e-8) - exact).abs().max()) < 1e-5
    for method in ("midpoint", "heun"):
        assert float((log_prob(gaussian_velocity, x, steps=200, method=method) - exact).abs().max()) < 1e-3, method


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_measured_order_of_convergence(method, order):
    x = _gaussian_points(20, seed=2)
    exact = gaussian_log_density(x)
    steps = [8, 16, 32, 64]
    errors = [float((log_prob(gaussian_velocity, x, steps=n, method=method) - exact).abs().max()) for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.35, (method, slope, errors)


GM = GaussianMixture(means=[[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], stds=[0.3, 0.5, 0.4], weights=[0.5, 0.3, 0.2])


def test_the_oracle_velocity_gives_the_oracle_density():
    g = torch.Generator().manual_seed(4)
    x = GM.sample(150, generator=g).double()  # [150, 2] where the data is
    tails = 3 * torch.randn(50, 2, generator=g, dtype=torch.float64)  # [50, 2] down to log p ~ -220
    ones = torch.ones(150, dtype=torch.float64)
    exact, exact_tails = GM.log_prob(x, ones), GM.log_prob(tails, ones[:50])
    lp = log_prob(GM.velocity, x, steps=100, method="rk4")
    err = float((lp - exact).abs().max())
    assert err < 1e-5, err
    # far in the tails the field is stiffer near t = 1: more steps, relative accuracy
    lp_tails = log_prob(GM.velocity, tails, steps=200, method="rk4")
    assert float(((lp_tails - exact_tails) / exact_tails).abs().max()) < 1e-6
    assert float(exact_tails.min()) < -100
    lp = log_prob(GM.velocity, x, method="dopri5", atol=1e-9, rtol=1e-9)
    assert float((lp - exact).abs().max()) < 1e-6


def test_labels_select_the_conditional_field():
    other = GaussianMixture(means=[[1.0, 1.0]], stds=[0.7])

    def model(x, t, y):
        return torch.where(y[:, None] == 0, GM.velocity(x, t), other.velocity(x, t))

    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y = torch.arange(40) % 2
    ones = torch.ones(40, dtype=torch.float64)
    exact = torch.where(y == 0, GM.log_prob(x, ones), other.log_prob(x, ones))
    lp = log_prob(model, x, y=y, steps=200)
    assert float((lp - exact).abs().max()) < 1e-5


def test_rademacher_hutchinson_is_exact_for_a_diagonal_jacobian():
    def v(x, t):  # elementwise field: its Jacobian is diagonal
        return torch.sin(x) * (1 + t[:, None]) - 0.5 * x

    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    a = log_prob(v, x, steps=20, estimator="exact")
    b = log_prob(v, x, steps=20, estimator="hutchinson", n_probes=1, probe="rademacher")
    assert torch.allclose(a, b, atol=1e-12, rtol=0)
    # Gaussian probes are not exact on the same field
    c = log_prob(v, x, steps=20, estimator="hutchinson", probe="gaussian")
    assert float((a - c).abs().max()) > 1e-3


def test_hutchinson_is_unbiased_on_a_linear_field():
    """v = A x: div v = tr A exactly, while one fixed Gaussian probe per point gives ε^T A ε."""
    A = torch.tensor([[0.3, 1.2, 0.0], [-0.7, -0.4, 0.5], [0.2, 0.0, 0.6]], dtype=torch.float64)

    def v(x, t):
        return x @ A.T

    x = torch.randn(4000, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    exact = log_prob(v, x, steps=4, method="rk4")
    hutch = log_prob(v, x, steps=4, method="rk4", estimator="hutchinson", probe="gaussian", seed=3)
    diff = hutch - exact  # [n], per-point estimator error, mean 0
    se = float(diff.std()) / math.sqrt(len(diff))
    assert float(diff.std()) > 0.5  # the single-probe estimate really is noisy ...
    assert abs(float(diff.mean())) < 4 * se  # ... and unbiased
    # the same seed gives the same probes, another seed other ones
    kw = dict(steps=4, estimator="hutchinson", probe="gaussian")
    first = log_prob(v, x[:10], seed=3, **kw)
    assert torch.equal(log_prob(v, x[:10], seed=3, **kw), first)
    assert not torch.allclose(log_prob(v, x[:10], seed=4, **kw), first)


def test_divergence_helper_matches_the_trace_of_the_jacobian():
    # v = tanh(A x): J = diag(1 - v^2) A, so div v = sum_i (1 - v_i^2) A_ii
    A = torch.tensor([[0.3, 1.2], [-0.7, -0.4]], dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    v = torch.tanh(x @ A.T)  # [5, 2]
    expected = ((1 - v.detach() ** 2) * A.diagonal()).sum(1)  # [5]
    assert torch.allclose(divergence(v, x), expected, atol=1e-12)
    # one probe e_i per coordinate (as a [2, B, 2] stack) recovers the same trace: sum_i e_i^T J e_i / 2
    probes = torch.eye(2, dtype=torch.float64)[:, None, :].expand(2, 5, 2)
    v = torch.tanh(x @ A.T)
    assert torch.allclose(2 * divergence(v, x, probes=probes), expected, atol=1e-12)


@pytest.fixture(scope="module")
def moons_model():
    torch.manual_seed(0)
    result = sl.train(sl.models.MLP(dim=2, hidden=64), "moons", steps=300, progress=False)
    return result.ema_model


def test_exact_and_hutchinson_agree_on_a_trained_mlp(moons_model):
    x = sl.data.toy("moons", 500, seed=1)  # float32, like the model
    exact = log_prob(moons_model, x, steps=50)
    hutch = log_prob(moons_model, x, steps=50, estimator="hutchinson", n_probes=4, seed=0)
    gap = abs(float(hutch.mean() - exact.mean())) / abs(float(exact.mean()))
    assert gap < 0.01, (gap, float(exact.mean()), float(hutch.mean()))
    diff = hutch - exact
    assert float(diff.std()) > 1e-3  # the estimator is genuinely stochastic per point
    # the trained model ranks moons above Gaussian noise points, where N(0, I) does the opposite
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(2))
    model_gap = float(exact.mean() - log_prob(moons_model, z, steps=50).mean())

    def base(p):
        return -0.5 * (p.double() ** 2).sum(1) - math.log(2 * math.pi)

    base_gap = float(base(x).mean() - base(z).mean())
    assert base_gap < -0.2 and model_gap > 0.2, (base_gap, model_gap)


def test_the_trained_models_density_integrates_to_one(moons_model):
    """Any smooth flow pushes N(0, I) to a normalised density, whatever it learned; on a grid
    covering the mass the Riemann sum of exp(log_prob) must be ~1."""
    grid = torch.linspace(-4.5, 4.5, 61, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)  # [3721, 2]
    lp = log_prob(copy.deepcopy(moons_model).double(), pts, steps=20, method="rk4")
    mass = float(lp.exp().sum() * (grid[1] - grid[0]) ** 2)
    assert mass == pytest.approx(1.0, abs=0.01), mass


def test_bad_arguments_are_named():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"unknown estimator 'trace'; accepted: exact, hutchinson"):
        log_prob(GM, x, estimator="trace")
    with pytest.raises(ValueError, match=r"unknown method 'rk5'; accepted: euler, midpoint, heun, rk4, dopri5"):
        log_prob(GM, x, method="rk5")
    with pytest.raises(ValueError, match=r"steps must be a positive integer, got 0"):
        log_prob(GM, x, steps=0)
    with pytest.raises(ValueError, match=r"n_probes must be a positive integer, got -1"):
        log_prob(GM, x, estimator="hutchinson", n_probes=-1)
    with pytest.raises(ValueError, match=r"unknown probe 'uniform'; accepted: rademacher, gaussian"):
        log_prob(GM, x, estimator="hutchinson", probe="uniform")
    with pytest.raises(ValueError, match=r"x must be a non-empty batch"):
        log_prob(GM, torch.randn(0, 2))
    with pytest.raises(ValueError, match=r"model output has shape \[4, 3\], expected \[4, 2\]"):
        log_prob(lambda x, t: torch.zeros(4, 3), x)
