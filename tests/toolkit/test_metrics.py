"""Metrics against exact answers."""

import pytest
import torch

from straightline import metrics
from straightline.data import toy
from straightline.oracles import GaussianMixture


def test_w2_of_a_translation_is_the_shift():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    assert metrics.w2(x, x) == pytest.approx(0.0, abs=1e-9)
    shift = torch.tensor([3.0, 4.0])
    assert metrics.w2(x, x + shift) == pytest.approx(5.0, rel=1e-6)


def test_w2_of_a_permutation_is_zero():
    x = torch.randn(100, 3)
    assert metrics.w2(x, x[torch.randperm(100)]) == pytest.approx(0.0, abs=1e-6)


def test_w2_floor_is_positive_and_shrinks_with_n():
    small, large = metrics.w2_floor("moons", 200), metrics.w2_floor("moons", 2000)
    assert 0 < large < small


def test_mmd():
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(1))
    assert metrics.mmd(x, x) == pytest.approx(0.0, abs=1e-9)
    assert metrics.mmd(x, x + 2) > 0.1


def test_straightness_and_npe_of_a_straight_ot_flow():
    # v(x, t) = c moves N(0, I) onto N(c, I) along straight lines, which is optimal transport
    c = torch.tensor([2.0, -1.0])
    v = lambda x, t: c.expand_as(x)  # noqa: E731
    x_0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(2))
    assert metrics.straightness(v, x_0) == pytest.approx(0.0, abs=1e-10)
    assert metrics.path_energy(v, x_0) == pytest.approx(5.0, rel=1e-6)
    assert metrics.npe(v, x_0, x_0 + c) == pytest.approx(0.0, abs=1e-6)


def test_straightness_of_a_curved_flow_is_positive():
    gm = GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], [0.3, 0.3])
    x_0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(3))
    assert metrics.straightness(gm, x_0) > 0.05


def test_mismatched_feature_sizes_are_named():
    with pytest.raises(ValueError, match="same feature size, got 2 and 3"):
        metrics.w2(torch.zeros(4, 2), torch.zeros(4, 3))


def test_off_data_fraction_of_the_data_itself_is_the_quantile():
    # a fresh draw of the data lies off the data exactly as often as the data does: ~2 %
    data = toy("moons", 5000, seed=1)
    reference = toy("moons", 3000, seed=2)
    own = metrics.off_data_fraction(toy("moons", 3000, seed=3), data, reference=reference)
    assert 0.01 <= own <= 0.03, own


def test_off_data_fraction_counts_the_points_between_the_modes():
    # a known mixture: 3/4 of the points drawn from the data, 1/4 at the origin, where two clusters
    # at (-2, 0) and (2, 0) with std 0.35 have no mass (about 8 standard deviations away)
    data = toy("two_clusters", 5000, seed=1)
    reference = toy("two_clusters", 2000, seed=2)
    mixed = torch.cat([toy("two_clusters", 1500, seed=3), 0.1 * torch.randn(500, 2)])
    off = metrics.off_data_fraction(mixed, data, reference=reference)
    assert 0.25 <= off <= 0.25 + 0.75 * 0.04, off
    with pytest.raises(ValueError, match="quantile must lie in"):
        metrics.off_data_fraction(mixed, data, reference=reference, quantile=2.0)


def test_w2_floor_band_brackets_its_mean():
    band = metrics.w2_floor_band("two_clusters", 200, repeats=10)
    assert band.low <= band.mean <= band.high and band.n == 200 and band.repeats == 10
    assert band.low < band.high
    with pytest.raises(ValueError, match="repeats must be >= 2"):
        metrics.w2_floor_band("two_clusters", 200, repeats=1)
