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


# --- differentiable likelihood, other sources, bits per dimension ------------------------------


def test_grad_in_x_matches_the_closed_form_and_finite_differences():
    x = _gaussian_points(n=6).requires_grad_(True)
    lp = log_prob(gaussian_velocity, x, steps=40, method="rk4", grad=True)
    (g,) = torch.autograd.grad(lp.sum(), x)  # [6, 3]
    # the exact density's gradient, up to the solver's error
    assert torch.allclose(g, -(x.detach() - MU) / S**2, atol=2e-3)
    # and the derivative of the computed (discretised) log-density itself, to float64 precision
    h = 1e-5
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = h
        fd = (log_prob(gaussian_velocity, x.detach() + e, steps=40) - log_prob(gaussian_velocity, x.detach() - e, steps=40)) / (2 * h)
        assert torch.allclose(g[:, i], fd, atol=1e-7), i


class _Scaling(torch.nn.Module):
    """v(x, t) = a x: x_1 = e^a x_0, so log p_1(x) = log p_0(e^{-a} x) - a D (closed form)."""

    def __init__(self, a: float):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, x, t):
        return self.a * x


def test_grad_in_a_parameter_matches_the_closed_form():
    model = _Scaling(0.3)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    lp = log_prob(model, x, steps=60, method="rk4", grad=True)
    x_0 = x * math.exp(-0.3)
    assert torch.allclose(lp, -0.5 * (x_0**2).sum(1) - math.log(2 * math.pi) - 0.6, atol=1e-9)
    (da,) = torch.autograd.grad(lp.sum(), model.a)
    assert math.isclose(float(da), float(((x_0**2).sum(1) - 2).sum()), abs_tol=1e-8)


def test_grad_in_the_weights_of_a_tiny_mlp_matches_finite_differences():
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=8, depth=2, time_dim=4).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    lp = log_prob(model, x, steps=8, method="midpoint", grad=True)
    weight = model.net[0].weight  # [8, 2 + 4]
    (g,) = torch.autograd.grad(lp.sum(), weight)
    assert float(g.abs().max()) > 1e-4  # the likelihood really depends on this weight
    h = 1e-6
    for idx in [(0, 0), (3, 1), (5, 4)]:
        with torch.no_grad():
            weight[idx] += h
            up = log_prob(model, x, steps=8, method="midpoint").sum()
            weight[idx] -= 2 * h
            down = log_prob(model, x, steps=8, method="midpoint").sum()
            weight[idx] += h
        assert math.isclose(float(g[idx]), float((up - down) / (2 * h)), rel_tol=1e-5, abs_tol=1e-8), idx


def test_grad_with_hutchinson_equals_the_exact_grad_on_a_diagonal_field():
    model = _Scaling(-0.2)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    exact = log_prob(model, x, steps=10, grad=True)
    hutch = log_prob(model, x, steps=10, grad=True, estimator="hutchinson", n_probes=2)
    gx_e, ga_e = torch.autograd.grad(exact.sum(), (x, model.a))
    gx_h, ga_h = torch.autograd.grad(hutch.sum(), (x, model.a))
    assert torch.allclose(gx_e, gx_h, atol=1e-12) and torch.allclose(ga_e, ga_h, atol=1e-12)


def test_without_grad_the_result_is_detached_and_parameters_untouched():
    model = _Scaling(0.1)
    lp = log_prob(model, torch.randn(3, 2, dtype=torch.float64), steps=5)
    assert not lp.requires_grad and model.a.grad is None


def test_a_non_gaussian_source_density():
    # Laplace(0, 1) source pushed by v = a x: log p_1(x) = log p_0(e^{-a} x) - a D
    def laplace(x_0):
        return -x_0.abs().sum(1) - x_0.shape[1] * math.log(2.0)

    x = torch.randn(7, 3, dtype=torch.float64)
    lp = log_prob(_Scaling(0.5), x, steps=50, log_p0=laplace)
    assert torch.allclose(lp, laplace(x * math.exp(-0.5)) - 1.5, atol=1e-8)
    with pytest.raises(ValueError, match=r"log_p0 must return one log-density per sample, shape \[7\], got \[7, 3\]"):
        log_prob(_Scaling(0.5), x, steps=2, log_p0=lambda z: z)
    with pytest.raises(ValueError, match=r"log_p0 must be a callable"):
        log_prob(_Scaling(0.5), x, steps=2, log_p0=3.0)


def test_keyword_conditions_and_numpy_points():
    def model(x, t, shift=None):
        return shift.expand_as(x)  # a translation by `shift`: log p_1(x) = log N(x - shift)

    shift = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    x = np.random.default_rng(1).standard_normal((5, 2))
    lp = log_prob(model, x, steps=3, shift=shift)
    xt = torch.from_numpy(x)
    assert torch.allclose(lp, -0.5 * ((xt - shift) ** 2).sum(1) - math.log(2 * math.pi), atol=1e-12)


def test_bits_per_dim():
    from straightline.likelihood import bits_per_dim

    # a uniform density on [0, 1]^D (log p = 0) of 8-bit data dequantized to [0, 1] costs 8 bits
    assert torch.allclose(bits_per_dim(torch.zeros(3), 12, bin_width=1 / 256), torch.full((3,), 8.0))
    # on [-1, 1] the density is 2^-D, log p = -D ln 2, and the bits are again 8
    assert torch.allclose(bits_per_dim(torch.full((2,), -12 * math.log(2)), 12, bin_width=2 / 256), torch.full((2,), 8.0))
    # without a bin width: the continuous density's bits, -log p / (D ln 2)
    assert torch.allclose(bits_per_dim(torch.tensor([-math.log(2) * 6]), 3), torch.tensor([2.0]))
    with pytest.raises(ValueError, match=r"bin_width must be a number > 0"):
        bits_per_dim(torch.zeros(1), 2, bin_width=0)
    with pytest.raises(ValueError, match=r"dim must be a positive integer, got 0"):
        bits_per_dim(torch.zeros(1), 0)
