"""Digit-sample quality: a small shipped classifier, its features, Fréchet distance and accuracy.

The classifier is a three-layer CNN trained on a FIXED split of the 1797 bundled 8x8 digits:

    held-out split: every image whose index i (in `straightline.data.digits()` order) has
                    i % 10 in {0, 3, 6}  (540 images, about 30 %)
    training split: all the others (1257 images)

No random number generator is involved, so the split is the same on every machine and version.
The weights ship as `straightline/weights/digit_classifier.safetensors`, written by

    python -m straightline.digit_metric build [OUT]

which calls `build_digit_classifier(out)`: seed 0, one torch thread, 40 epochs of Adam.

Fréchet distance (FD, as in FID) is computed between Gaussian fits of the classifier's
penultimate-layer features (64 numbers per image). Like W2 between finite samples it is never
zero for two finite draws of the same distribution, so always report it beside
`digit_fd_floor(n)`: the FD between two disjoint halves of the real digits (random halves for
unconditional samples, class-stratified ones with `balanced=True` for class-balanced conditional
samples). `digit_fd`'s default reference is all 1797 real digits.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ._checks import check_positive_int
from .data import digits

__all__ = [
    "DigitClassifier",
    "digit_split",
    "build_digit_classifier",
    "load_digit_classifier",
    "digit_features",
    "frechet_distance",
    "digit_fd",
    "digit_fd_floor",
    "digit_accuracy",
    "WEIGHTS_PATH",
]

WEIGHTS_PATH = Path(__file__).parent / "weights" / "digit_classifier.safetensors"
HELD_OUT_RESIDUES = (0, 3, 6)  # image i is held out iff i % 10 is one of these
FEATURE_DIM = 64
NUM_CLASSES = 10
_BUILD = {"seed": 0, "epochs": 40, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-4}


class DigitClassifier(nn.Module):
    """[B, 1, 8, 8] in [-1, 1] -> logits [B, 10]; `features` gives the penultimate layer [B, 64]."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),  # [B, 16, 8, 8]
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),  # [B, 32, 8, 8]
            nn.MaxPool2d(2),  # [B, 32, 4, 4]
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),  # [B, 32, 4, 4]
            nn.Flatten(),  # [B, 512]
            nn.Linear(32 * 4 * 4, FEATURE_DIM), nn.ReLU(),  # [B, 64]
        )
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)  # [B, 64]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))  # [B, 10]


def digit_split() -> tuple[Tensor, Tensor]:
    """(training indices [1257], held-out indices [540]) into `straightline.data.digits()`."""
    index = torch.arange(len(digits()[1]))  # [1797]
    held = torch.isin(index % 10, torch.tensor(HELD_OUT_RESIDUES))  # [1797] bool
    return index[~held], index[held]


def _accuracy(model: DigitClassifier, images: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).double().mean())


def build_digit_classifier(
    out: str | Path | None = None, *, epochs: int = _BUILD["epochs"], seed: int = _BUILD["seed"]
) -> DigitClassifier:
    """Train the classifier on the training split (deterministic: fixed seed, one torch thread).

    Writes safetensors to `out` when given (metadata: the split rule and held-out accuracy) and
    returns the model in eval mode. The shipped file was written with the defaults.
    """
    check_positive_int(epochs, "epochs")
    images, labels = digits()  # [1797, 1, 8, 8], [1797]
    train_idx, held_idx = digit_split()
    x, y = images[train_idx], labels[train_idx]  # [1257, 1, 8, 8], [1257]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DigitClassifier()
            optimizer = torch.optim.Adam(model.parameters(), lr=_BUILD["lr"], weight_decay=_BUILD["weight_decay"])
            generator = torch.Generator().manual_seed(seed)
            bs = _BUILD["batch_size"]
            model.train()
            for _ in range(epochs):
                order = torch.randperm(len(x), generator=generator)  # [1257]
                for start in range(0, len(x), bs):
                    batch = order[start : start + bs]
                    loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            model.eval()
    finally:
        torch.set_num_threads(threads)
    if out is not None:
        accuracy = _accuracy(model, images[held_idx], labels[held_idx])
        meta = {
            "held_out": f"i % 10 in {list(HELD_OUT_RESIDUES)}",
            "held_out_accuracy": f"{accuracy:.6f}",
            "build": repr({**_BUILD, "seed": seed, "epochs": epochs}),
        }
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out), metadata=meta)
    return model


@lru_cache(maxsize=1)
def load_digit_classifier() -> DigitClassifier:
    """The shipped classifier (loaded once; eval mode, no gradients). Do not modify it in place."""
    if not WEIGHTS_PATH.is_file():
        raise FileNotFoundError(
            f"no digit classifier at {str(WEIGHTS_PATH)!r}; build it with `python -m straightline.digit_metric build`"
        )
    model = DigitClassifier()
    model.load_state_dict(load_file(str(WEIGHTS_PATH)))
    return model.eval().requires_grad_(False)


def _check_images(images: Tensor, name: str = "images") -> Tensor:
    if not isinstance(images, Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (1, 8, 8) or len(images) == 0:
        got = list(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a non-empty tensor [N, 1, 8, 8], got {got}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    return images.detach().float().cpu().clamp(-1.0, 1.0)


def digit_features(images: Tensor, *, batch_size: int = 1024) -> Tensor:
    """Penultimate-layer features [N, 64] (float64) of images [N, 1, 8, 8].

    Images are clamped to [-1, 1] first (the range of the real digits, as a saved image would be).
    """
    check_positive_int(batch_size, "batch_size")
    x = _check_images(images)
    model = load_digit_classifier()
    with torch.no_grad():
        feats = [model.features(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(feats).double()  # [N, 64]


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """FD between Gaussian fits of feature sets a [N, F] and b [M, F] (N, M >= 2), in float64.

    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2). The cross term is computed
    from the eigenvalues of the symmetric PSD matrix S_a^1/2 S_b S_a^1/2, so no complex parts arise
    (it has the same trace-square-root as S_a S_b); tiny negative eigenvalues from rounding are
    clipped to 0 and the result is clipped at 0.
    """
    xa = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    xb = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[1] != xb.shape[1] or len(xa) < 2 or len(xb) < 2:
        raise ValueError(
            f"a and b must be feature sets [N, F] and [M, F] with N, M >= 2, got {list(xa.shape)} and {list(xb.shape)}"
        )
    mu_a, mu_b = xa.mean(0), xb.mean(0)  # [F]
    cov_a, cov_b = np.cov(xa, rowvar=False), np.cov(xb, rowvar=False)  # [F, F]
    root_a = _psd_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return max(value, 0.0)


@lru_cache(maxsize=1)
def _real_features() -> Tensor:
    return digit_features(digits()[0])  # [1797, 64]


def digit_fd(samples: Tensor, reference: Tensor | None = None) -> float:
    """Fréchet distance between the classifier features of samples [N, 1, 8, 8] and reference.

    The default reference is ALL 1797 real digits. Compare with `digit_fd_floor(len(samples))`.
    """
    feats = digit_features(samples)
    ref = _real_features() if reference is None else digit_features(reference)
    return frechet_distance(feats, ref)


def _halves(labels: Tensor, n: int, balanced: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two disjoint index sets of (about) n real digits each: random, or stratified by class."""
    total = len(labels)
    if not balanced:
        order = torch.randperm(total, generator=generator)  # [1797]
        return order[:n], order[-n:]
    first, second = [], []
    for k in range(NUM_CLASSES):
        idx = torch.nonzero(labels == k).squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]  # this class, shuffled
        m = min(len(idx) // 2, round(n * len(idx) / total))  # the class's share of n
        first.append(idx[:m])
        second.append(idx[len(idx) - m :])
    return torch.cat(first), torch.cat(second)


@lru_cache(maxsize=32)
def digit_fd_floor(n: int | None = None, *, balanced: bool = False, repeats: int = 5) -> float:
    """FD between two disjoint halves of the real digits: what samples as good as the data score.

    Each repeat (seeded 0, 1, ...) draws two disjoint sets of n real digits (n defaults to 898,
    half the data; larger n is capped there, which overstates the floor) and the mean FD over
    `repeats` is returned. FD shrinks as n grows: report digit_fd on n samples beside
    digit_fd_floor(n).

    `balanced=False`: random halves, whose class mix varies like an unconditional sampler's.
    `balanced=True`: halves stratified by class (each class split in two), the floor for
    class-conditional samples with balanced labels (e.g. y = arange(n) % 10). Class-mix noise
    is a large part of the random floor (measured at n = 898: 12.1 random, 5.1 balanced).

    digit_fd's default reference is all 1797 digits, a larger and steadier sample than a half,
    so a sampler exactly as good as the data lands somewhat BELOW the floor (the finite-sample
    bias of FD scales about like 1/n + 1/m: 3/4 of the floor for n = 898). An FD at or below the
    floor means the metric cannot tell the samples from real digits.
    """
    labels = digits()[1]  # [1797]
    half = len(labels) // 2
    if n is None:
        n = half
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (capped at {half}), got {n!r}")
    n = min(n, half)
    check_positive_int(repeats, "repeats")
    feats = _real_features()  # [1797, 64]
    values = []
    for r in range(repeats):
        a, b = _halves(labels, n, balanced, torch.Generator().manual_seed(r))
        values.append(frechet_distance(feats[a], feats[b]))
    return float(np.mean(values))


def digit_accuracy(samples: Tensor, labels: Tensor) -> float:
    """Fraction of class-conditional samples [N, 1, 8, 8] the classifier assigns to labels [N]."""
    x = _check_images(samples, "samples")
    if not isinstance(labels, Tensor) or labels.shape != (len(x),) or labels.is_floating_point():
        got = f"{labels.dtype} {list(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an integer tensor of shape [{len(x)}], got {got}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        low, high = labels.min().item(), labels.max().item()
        raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1}, got values in [{low}, {high}]")
    with torch.no_grad():
        predicted = load_digit_classifier()(x).argmax(1)  # [N]
    return float((predicted == labels.cpu()).double().mean())


def _main(argv: list[str]) -> int:
    if not argv or argv[0] != "build" or len(argv) > 2:
        usage = "usage: python -m straightline.digit_metric build [OUT]  (default OUT: the shipped weights file)"
        print(usage, file=sys.stderr)
        return 2
    out = Path(argv[1]) if len(argv) == 2 else WEIGHTS_PATH
    model = build_digit_classifier(out)
    images, labels = digits()
    _, held = digit_split()
    print(f"wrote {out}: held-out accuracy {_accuracy(model, images[held], labels[held]):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
