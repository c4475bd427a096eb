"""The Gaussian-mixture oracle against Monte Carlo, and the CFM = FM gradient theorem."""

import math

import pytest
import torch

from straightline.oracles import GaussianMixture

GM = GaussianMixture(means=[[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], stds=[0.3, 0.5, 0.4], weights=[0.5, 0.3, 0.2])


def _mc_velocity(x, t, n=1_000_000, seed=0):
    """Self-normalised Monte Carlo of E[x_1 - x_0 | x_t = x]: draw x_1 from the data, weight by
    p(x_t = x | x_1) = N(x; t x_1, (1 - t)^2 I), and set x_0 = (x - t x_1) / (1 - t).
    Returns the estimate and its standard error."""
    x_1 = GM.sample(n, generator=torch.Generator().manual_seed(seed)).double()  # [n, 2]
    log_w = -((x[None] - t * x_1) ** 2).sum(1) / (2 * (1 - t) ** 2)  # [n]
    w = torch.softmax(log_w, dim=0)
    x_0 = (x[None] - t * x_1) / (1 - t)
    f = x_1 - x_0  # [n, 2]
    mean = (w[:, None] * f).sum(0)
    se = torch.sqrt((w[:, None] ** 2 * (f - mean) ** 2).sum(0))
    return mean, se


CASES = [(t, p) for t in (0.1, 0.5) for p in ([0.0, 0.0], [1.0, 0.5], [-1.5, -0.5])]
CASES += [(0.8, [-1.6, 0.1]), (0.8, [1.5, 0.9]), (0.8, [0.3, -1.4]), (0.8, [-0.8, -0.8])]


@pytest.mark.parametrize("t,point", CASES)
def test_velocity_matches_monte_carlo(t, point):
    x = torch.tensor(point, dtype=torch.float64)
    exact = GM.velocity(x[None], torch.tensor([t]))[0]
    mc, se = _mc_velocity(x, t)
    assert float(se.max()) < 0.05  # the comparison below is sharp enough to mean something
    assert ((exact - mc).abs() <= 5 * se + 1e-3).all(), (exact, mc, se)


def test_density_integrates_to_one_and_score_is_its_gradient():
    t = 0.6
    grid = torch.linspace(-6, 6, 301, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    p = GM.log_prob(pts, torch.full((len(pts),), t)).exp()
    assert float(p.sum() * (grid[1] - grid[0]) ** 2) == pytest.approx(1.0, abs=1e-4)
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64, requires_grad=True)
    GM.log_prob(x, torch.tensor([t])).sum().backward()
    assert torch.allclose(x.grad, GM.score(x.detach(), torch.tensor([t])), atol=1e-10)


def test_velocity_and_score_identity_for_the_linear_path():
    # v_t(x) = (x + (1 - t) ∇ log p_t(x)) / t
    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 2, generator=g, dtype=torch.float64) * 2
    t = torch.rand(50, generator=g, dtype=torch.float64) * 0.9 + 0.05
    v = GM.velocity(x, t)
    rhs = (x + (1 - t)[:, None] * GM.score(x, t)) / t[:, None]
    assert torch.allclose(v, rhs, atol=1e-9)


def test_cfm_and_fm_gradients_agree():
    """Lipman et al. 2023: the per-pair target gives the same gradient as the marginal one.

    The model is linear in fixed features, v = W phi(x, t), so each sample's gradient is
    2 (v - target) phi^T. The difference between the CFM and FM gradients is the mean of
    2 (u_t(x_t) - (x_1 - x_0)) phi^T, which must vanish up to Monte Carlo error."""
    n = 200_000
    g = torch.Generator().manual_seed(0)
    x_1 = GM.sample(n, generator=g).double()
    x_0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64)
    x_t = t[:, None] * x_1 + (1 - t[:, None]) * x_0
    phi = torch.cat([x_t, t[:, None], torch.sin(3 * x_t), torch.ones(n, 1, dtype=torch.float64)], 1)  # [n, 6]
    W = torch.randn(2, phi.shape[1], generator=g, dtype=torch.float64) * 0.3
    v = phi @ W.T
    per_cfm = 2 * (v - (x_1 - x_0))[:, :, None] * phi[:, None, :]  # [n, 2, 6]
    per_fm = 2 * (v - GM.velocity(x_t, t))[:, :, None] * phi[:, None, :]
    diff = per_cfm - per_fm
    mean, se = diff.mean(0), diff.std(0) / math.sqrt(n)
    assert (mean.abs() < 4 * se + 1e-12).all(), (mean / se)
    # and the gradients themselves are far from zero, so the agreement is not trivial
    assert per_fm.mean(0).abs().max() > 20 * se.max()


def test_bad_mixture_parameters_are_named():
    with pytest.raises(ValueError, match="weights must be 2 non-negative numbers summing to 1"):
        GaussianMixture([[0.0], [1.0]], [1.0], weights=[0.2, 0.2])
    with pytest.raises(ValueError, match="stds must be > 0"):
        GaussianMixture([[0.0], [1.0]], [0.0, 1.0])
