"""Time samplers, their densities, the SD3 shift, and density <-> weight equivalence."""

import pytest
import torch

from straightline import timesteps


def _integral(f, n=200_001):
    t = torch.linspace(0, 1, n, dtype=torch.float64)[1:-1]
    return float(f(t).mean())


@pytest.mark.parametrize(
    "sampler",
    [timesteps.uniform(), timesteps.logit_normal(0.0, 1.0), timesteps.logit_normal(0.5, 0.7),
     timesteps.shifted(timesteps.uniform(), 3.0), timesteps.shifted(timesteps.logit_normal(), 0.5)],
    ids=repr,
)
def test_density_integrates_to_one_and_matches_draws(sampler):
    assert _integral(sampler.density) == pytest.approx(1.0, abs=2e-3)
    draws = sampler(400_000, generator=torch.Generator().manual_seed(0)).double()
    assert draws.min() >= 0 and draws.max() <= 1
    hist = torch.histc(draws, bins=10, min=0, max=1) / len(draws)
    edges = torch.linspace(0, 1, 11, dtype=torch.float64)
    for k in range(10):
        t = torch.linspace(float(edges[k]), float(edges[k + 1]), 2001, dtype=torch.float64)[1:-1]
        expected = float(sampler.density(t).mean()) * 0.1
        assert float(hist[k]) == pytest.approx(expected, abs=3e-3)


def test_sampling_t_equals_weighting_the_loss():
    # E_{t ~ pi}[l(t)] == E_{t ~ U}[pi(t) l(t)] for a loss curve l(t)
    sampler = timesteps.logit_normal(0.0, 1.0)
    loss_curve = lambda t: (1 - t) ** 2 + 0.3 * torch.sin(5 * t)  # noqa: E731
    by_sampling = float(loss_curve(sampler(2_000_000, generator=torch.Generator().manual_seed(1)).double()).mean())
    by_weight = _integral(lambda t: timesteps.density_weight(sampler)(t) * loss_curve(t))
    assert by_sampling == pytest.approx(by_weight, abs=2e-3)


def test_shift_fixed_points_monotone_and_direction():
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    for s in (0.5, 1.0, 3.0):
        out = timesteps.shift(t, s)
        assert out[0] == 0 and out[-1] == 1
        assert torch.all(out[1:] > out[:-1])
    assert torch.allclose(timesteps.shift(t, 1.0), t)
    mid = torch.tensor([0.5], dtype=torch.float64)
    # s > 1 spends more time at high noise (small t in this convention): sigma 0.5 -> 0.75
    assert float(timesteps.shift(mid, 3.0)) == pytest.approx(0.25)
    assert torch.allclose(timesteps.shift(timesteps.shift(t, 3.0), 1 / 3.0), t)


def test_inverse_one_minus_t_weight():
    w = timesteps.inverse_one_minus_t(eps=0.01)
    assert torch.allclose(w(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([1 / 1.01, 1 / 0.51, 100.0]))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: timesteps.logit_normal(0.0, 0.0), "s must be > 0, got 0.0"),
        (lambda: timesteps.shift(torch.tensor([0.5]), -1.0), "shift s must be > 0, got -1.0"),
        (lambda: timesteps.inverse_one_minus_t(0.0), "eps must be > 0, got 0.0"),
    ],
)
def test_bad_parameters_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
