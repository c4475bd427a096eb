"""The digit metric: the shipped classifier, Fréchet distance against its floor, accuracy."""

import pytest
import torch
from safetensors import safe_open

from straightline import digit_metric as dm
from straightline import metrics
from straightline.data import digits


@pytest.fixture(scope="module")
def real():
    images, labels = digits()  # [1797, 1, 8, 8], [1797]
    _, held = dm.digit_split()
    return images, labels, held


def test_split_is_fixed_and_disjoint():
    train, held = dm.digit_split()
    assert len(train) == 1257 and len(held) == 540
    assert set(train.tolist()).isdisjoint(held.tolist()) and len(set(train.tolist()) | set(held.tolist())) == 1797
    assert held[:4].tolist() == [0, 3, 6, 10]


def test_shipped_weights_are_small_and_packaged():
    assert dm.WEIGHTS_PATH.is_file() and dm.WEIGHTS_PATH.stat().st_size < 1_000_000
    with safe_open(str(dm.WEIGHTS_PATH), framework="pt") as f:
        assert f.metadata()["held_out"] == "i % 10 in [0, 3, 6]"


def test_classifier_held_out_accuracy(real):
    images, labels, held = real
    accuracy = dm.digit_accuracy(images[held], labels[held])  # measured: 0.978
    assert accuracy >= 0.95, accuracy


def test_metrics_reexports():
    for name in ("digit_features", "digit_fd", "digit_fd_floor", "digit_accuracy"):
        assert name in metrics.__all__ and getattr(metrics, name) is getattr(dm, name)


def test_features_shape_and_dtype(real):
    images = real[0]
    feats = dm.digit_features(images[:10])
    assert feats.shape == (10, 64) and feats.dtype == torch.float64
    assert feats.std(0).sum() > 1.0  # the features vary across digits


def test_fd_of_a_set_with_itself_is_zero(real):
    images = real[0]
    assert dm.digit_fd(images) == pytest.approx(0.0, abs=1e-6)
    assert dm.digit_fd(images[:500], images[:500]) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    # N(0, I) vs N(m, 4 I) in F dims: |m|^2 + F (1 + 4 - 2 * 2) = |m|^2 + F, on exact moments
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 3, generator=gen, dtype=torch.float64)
    z = (z - z.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T  # exact mean 0, cov I
    m = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    assert dm.frechet_distance(z, 2 * z + m) == pytest.approx(9.0 + 3.0, rel=1e-9)


def test_floor_is_small_and_noise_is_far(real):
    images = real[0]
    floor = dm.digit_fd_floor()  # measured: 12.1
    noise = torch.randn(898, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(images[:898], 3, stride=1, padding=1, count_include_pad=False)
    fd_noise, fd_blur = dm.digit_fd(noise), dm.digit_fd(blurred)  # measured: 732, 977
    assert 0 < floor < 25, floor
    assert fd_noise > 20 * floor and fd_blur > 20 * floor, (floor, fd_noise, fd_blur)
    assert dm.digit_fd_floor(200) > floor  # the floor grows as the sample shrinks (measured: 49)
    balanced = dm.digit_fd_floor(balanced=True)  # measured: 5.1; no class-mix noise
    assert 0 < balanced < 0.75 * floor, (balanced, floor)


def test_floor_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n must be an integer >= 2.*got 1"):
        dm.digit_fd_floor(1)


def test_fd_is_symmetric(real):
    images = real[0]
    noise = torch.randn(500, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    ab, ba = dm.digit_fd(noise, images[:700]), dm.digit_fd(images[:700], noise)
    assert ab == pytest.approx(ba, rel=1e-6) and ab > 100


def test_accuracy_on_held_out_digits_and_on_wrong_labels(real):
    images, labels, held = real
    with torch.no_grad():
        predicted = dm.load_digit_classifier()(images[held]).argmax(1)
    direct = (predicted == labels[held]).double().mean().item()
    assert dm.digit_accuracy(images[held], labels[held]) == pytest.approx(direct, abs=1e-12)
    assert dm.digit_accuracy(images[held], (labels[held] + 1) % 10) < 0.05


def test_bad_inputs_name_the_value(real):
    images, labels, _ = real
    with pytest.raises(ValueError, match=r"\[N, 1, 8, 8\], got \[10, 64\]"):
        dm.digit_features(images[:10].reshape(10, 64))
    with pytest.raises(ValueError, match=r"0\.\.9, got values in \[0, 10\]"):
        dm.digit_accuracy(images[:3], torch.tensor([0, 5, 10]))
    with pytest.raises(ValueError, match="N, M >= 2"):
        dm.digit_fd(images[:1])


def test_rebuilding_reproduces_the_shipped_accuracy(real, tmp_path):
    images, labels, held = real
    shipped = dm.digit_accuracy(images[held], labels[held])
    rebuilt = dm.build_digit_classifier(tmp_path / "c.safetensors")  # about 15 s on one thread
    with torch.no_grad():
        accuracy = (rebuilt(images[held]).argmax(1) == labels[held]).double().mean().item()
    assert accuracy == pytest.approx(shipped, abs=0.01), (accuracy, shipped)
    with safe_open(str(tmp_path / "c.safetensors"), framework="pt") as f:
        assert float(f.metadata()["held_out_accuracy"]) == pytest.approx(accuracy, abs=1e-6)
