"""Training reaches its quality targets, is reproducible, and checkpoints rebuild the model."""

import pytest
import torch

import straightline as sl
from straightline import couplings, metrics
from straightline.data import toy

N_EVAL = 2000


def _train_moons(coupling):
    torch.manual_seed(0)
    return sl.train(sl.models.MLP(dim=2), "moons", steps=3000, coupling=coupling, seed=0, progress=False).ema_model


@pytest.fixture(scope="module")
def moons_models():
    return {"independent": _train_moons(None), "exact_ot": _train_moons(couplings.exact_ot)}


def _w2_at(model, steps):
    x_0 = torch.randn(N_EVAL, 2, generator=torch.Generator().manual_seed(123))
    return metrics.w2(sl.sample(model, x_0, steps=steps), toy("moons", N_EVAL, seed=77))


def test_moons_reaches_three_times_the_floor(moons_models):
    floor = metrics.w2_floor("moons", N_EVAL)
    w = _w2_at(moons_models["independent"], 100)
    assert w <= 3 * floor, (w, floor)


def test_exact_ot_halves_the_one_step_error(moons_models):
    independent = _w2_at(moons_models["independent"], 1)
    ot = _w2_at(moons_models["exact_ot"], 1)
    assert 2 * ot <= independent, (ot, independent)


def test_same_seed_same_weights_bit_for_bit():
    def run():
        torch.manual_seed(5)
        model = sl.models.MLP(dim=2, hidden=32, depth=2)
        return sl.train(model, "8gaussians", steps=30, batch_size=64, seed=3, progress=False)

    a, b = run(), run()
    assert a.losses == b.losses
    for pa, pb in zip(a.ema_model.parameters(), b.ema_model.parameters()):
        assert torch.equal(pa, pb)
    torch.manual_seed(5)
    other = sl.train(sl.models.MLP(dim=2, hidden=32, depth=2), "8gaussians", steps=30, batch_size=64, seed=4, progress=False)
    assert other.losses != a.losses


def test_training_leaves_the_global_rng_alone():
    model = sl.models.MLP(dim=2, hidden=16, depth=1)
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    sl.train(model, "moons", steps=3, batch_size=8, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_digits_convnet_learns_class_conditionally():
    images, labels = sl.data.digits()
    torch.manual_seed(0)
    model = sl.models.ConvNet(channels=16, num_classes=10)
    result = sl.train(model, images, labels=labels, steps=150, batch_size=64, lr=2e-3, seed=0, progress=False)
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.75 * first
    x = torch.randn(4, 1, 8, 8)
    t = torch.rand(4)
    assert model(x, t, torch.tensor([0, 1, 2, 10])).shape == (4, 1, 8, 8)
    assert torch.equal(model(x, t), model(x, t, torch.full((4,), 10)))  # y=None is the null class


def test_checkpoint_alone_rebuilds_the_model(tmp_path):
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=48, depth=2)
    path = sl.save(model, tmp_path / "m.safetensors", metadata={"dataset": "moons"})
    loaded = sl.load(path)
    assert type(loaded) is sl.models.MLP and loaded.config == model.config
    x, t = torch.randn(7, 2), torch.rand(7)
    assert torch.equal(loaded(x, t), model(x, t))
    conv = sl.models.ConvNet(channels=16, num_classes=10)
    loaded_conv = sl.load(sl.save(conv, tmp_path / "c.safetensors"))
    xi = torch.randn(2, 1, 8, 8)
    assert torch.equal(loaded_conv(xi, t[:2], torch.tensor([1, 2])), conv(xi, t[:2], torch.tensor([1, 2])))


def test_loading_something_else_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="is not a straightline checkpoint"):
        sl.load(tmp_path / "foreign.safetensors")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        sl.load(tmp_path / "missing.safetensors")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"steps": 5, "batch_size": -1}, "batch_size must be a positive integer, got -1"),
        ({"steps": 5, "lr": 0.0}, "lr must be a number > 0, got 0.0"),
        ({"steps": 5, "ema": 1.5}, r"ema must be None or a number in \[0, 1\), got 1.5"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.train(sl.models.MLP(dim=2, hidden=8, depth=1), "moons", progress=False, **kwargs)


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="unknown dataset 'mooons'"):
        sl.train(sl.models.MLP(dim=2, hidden=8, depth=1), "mooons", steps=1, progress=False)
