"""Datasets: pinned seeded draws (so definitions never drift silently), shapes, errors."""

import pytest
import torch

from straightline import data

PINNED = {
    "two_clusters": [[-1.8724816, 0.0470387], [2.0574756, 0.1070164], [2.0734932, 0.3169691]],
    "8gaussians": [[-2.4271324, 0.0268790], [1.8006108, -1.7066141], [-1.7257704, -1.5866420]],
    "moons": [[0.8666374, 0.1348023], [-0.0843571, -1.0130366], [-1.5794899, 1.2300923]],
    "checkerboard": [[0.1320305, -1.6925771], [1.6340787, 1.4900935], [0.8964447, 0.4556280]],
    "spirals": [[0.2788680, -0.5339938], [-0.8593106, -0.3180602], [-1.7237515, 0.1177699]],
}


def test_names():
    assert set(PINNED) <= set(data.toy_names())


@pytest.mark.parametrize("name", list(PINNED))
def test_seeded_draw_is_pinned(name):
    x = data.toy(name, 3, seed=0)
    assert x.dtype == torch.float32 and x.shape == (3, 2)
    assert torch.allclose(x, torch.tensor(PINNED[name]), atol=1e-6)


@pytest.mark.parametrize("name", list(PINNED))
def test_shape_scale_and_reproducibility(name):
    x = data.toy(name, 5000, seed=1)
    assert x.shape == (5000, 2) and x.dtype == torch.float32
    assert torch.equal(x, data.toy(name, 5000, seed=1))
    assert not torch.equal(x, data.toy(name, 5000, seed=2))
    assert 0.5 < float(x.std()) < 2.5 and float(x.abs().max()) < 4.5
    assert float(x.mean(0).abs().max()) < 0.3


def test_checkerboard_occupies_only_dark_squares():
    x = data.toy("checkerboard", 4000, seed=0)
    cells = torch.floor(x + 2).long()
    assert ((cells.sum(1) % 2) == 0).all()
    assert len({tuple(c) for c in cells.tolist()}) == 8


def test_digits():
    images, labels = data.digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: data.toy("swissroll", 10), r"unknown dataset 'swissroll'; accepted: two_clusters, 8gaussians, moons"),
        (lambda: data.toy("moons", 0), r"n must be a positive integer, got 0"),
        (lambda: data.toy("moons", 2.5), r"got 2.5"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
