"""The models the course ships: quality against their floors, and reproducible by the build command."""

import pytest
import torch

import straightline as sl
from straightline.course import shipped

N = 2000


@pytest.fixture(scope="module")
def models():
    return shipped.load_shipped()


def test_every_spec_has_weights_and_the_total_is_small():
    total = sum((shipped.WEIGHTS_DIR / s.file).stat().st_size for s in shipped.SPECS)
    assert total <= 10 * 2**20, total


@pytest.mark.parametrize("spec", [s for s in shipped.SPECS if s.dataset != "digits"], ids=lambda s: s.name)
def test_2d_models_reach_their_floor(models, spec):
    x_0 = torch.randn(N, 2, generator=torch.Generator().manual_seed(42))
    x_1 = sl.sample(models[spec.name], x_0, steps=100)
    w = sl.metrics.w2(x_1, sl.data.toy(spec.dataset, N, seed=43))
    floor = sl.metrics.w2_floor(spec.dataset, N)
    assert w <= 2.5 * floor, (spec.name, w, floor)


def test_exact_ot_models_are_straighter(models):
    x_0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    for dataset in ("two_clusters", "moons", "8gaussians"):
        ind = sl.metrics.straightness(models[f"{dataset}-independent"], x_0, steps=50)
        ot = sl.metrics.straightness(models[f"{dataset}-exact_ot"], x_0, steps=50)
        assert ot < 0.5 * ind, (dataset, ot, ind)


def test_digits_model_draws_the_requested_digit(models):
    """A classifier trained on the real digits recognises class-conditional samples."""
    from sklearn.linear_model import LogisticRegression

    images, labels = sl.data.digits()
    clf = LogisticRegression(max_iter=2000).fit(images.flatten(1).numpy(), labels.numpy())
    model = models["digits"]
    y = torch.arange(10).repeat_interleave(10)  # 10 of each class
    x_0 = torch.randn(100, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x_1 = sl.sample(lambda x, t: model(x, t, y), x_0, steps=50).clamp(-1, 1)
    accuracy = (clf.predict(x_1.flatten(1).numpy()) == y.numpy()).mean()
    assert accuracy >= 0.8, accuracy
    # unconditional samples (the null class) look like digits of several classes
    free = sl.sample(model, x_0, steps=50).clamp(-1, 1)
    probs = clf.predict_proba(free.flatten(1).numpy())
    assert probs.max(1).mean() >= 0.7
    assert len(set(probs.argmax(1).tolist())) >= 6


def test_retraining_reproduces_a_shipped_model(tmp_path, models):
    import subprocess
    import sys

    spec = shipped.spec("two_clusters-independent")
    cmd = [sys.executable, "-m", "straightline.cli", "build-models", "--only", spec.name, "--out", str(tmp_path), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rebuilt = sl.load(tmp_path / spec.file)
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    t = torch.rand(500, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(rebuilt(x, t), models[spec.name](x, t), atol=1e-3)


def test_missing_weights_say_how_to_build(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `straightline build-models`"):
        shipped.load_shipped(tmp_path)
