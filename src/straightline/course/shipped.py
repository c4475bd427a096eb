"""The small trained models the course's simulations run on.

Every model is described by a `ModelSpec` below and trained by `straightline build-models`
(also `make models`) with a fixed seed; the weights ship inside the package as safetensors
(`weights/NAME.safetensors`). The app loads them once at start-up (`load_shipped`), so no
simulation ever waits on training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import straightline as sl

__all__ = ["ModelSpec", "SPECS", "WEIGHTS_DIR", "build", "load_shipped", "spec"]

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dataset: str  # a toy dataset name, or "digits"
    coupling: str = "independent"  # independent | exact_ot
    path: str = "linear"  # linear | cosine
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0

    @property
    def file(self) -> str:
        return f"{self.name}.safetensors"


SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("two_clusters-independent", "two_clusters", steps=2000),
    ModelSpec("two_clusters-exact_ot", "two_clusters", coupling="exact_ot", steps=2000),
    ModelSpec("moons-independent", "moons", steps=3000),
    ModelSpec("moons-exact_ot", "moons", coupling="exact_ot", steps=3000),
    ModelSpec("8gaussians-independent", "8gaussians", steps=3000),
    ModelSpec("8gaussians-exact_ot", "8gaussians", coupling="exact_ot", steps=3000),
    ModelSpec("digits", "digits", steps=5000, batch_size=256, lr=1e-3),
)


def spec(name: str) -> ModelSpec:
    for s in SPECS:
        if s.name == name:
            return s
    raise ValueError(f"unknown shipped model {name!r}; accepted: {', '.join(s.name for s in SPECS)}")


_PATHS = {"linear": sl.LinearPath, "cosine": sl.CosinePath}
_COUPLINGS: dict[str, Callable | None] = {"independent": None, "exact_ot": sl.couplings.exact_ot}


def _train_one(s: ModelSpec, progress: bool) -> tuple[nn.Module, dict[str, str]]:
    torch.manual_seed(s.seed)
    if s.dataset == "digits":
        images, labels = sl.data.digits()
        # an MLP on the 64 pixels: as good as a small conv net on 8x8 images, and ten times cheaper
        model = sl.models.MLP(dim=64, hidden=512, depth=4, time_dim=64, num_classes=10)
        result = sl.train(
            model, images, labels=labels, label_dropout=0.1, steps=s.steps, batch_size=s.batch_size,
            lr=s.lr, seed=s.seed, progress=progress,
        )
    else:
        model = sl.models.MLP(dim=2, hidden=128, depth=3)
        result = sl.train(
            model, s.dataset, steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=s.seed,
            path=_PATHS[s.path](), coupling=_COUPLINGS[s.coupling], progress=progress,
        )
    meta = {
        "spec": s.name, "dataset": s.dataset, "coupling": s.coupling, "path": s.path,
        "steps": str(s.steps), "seed": str(s.seed), "final_loss": f"{sum(result.losses[-200:]) / 200:.5f}",
        "train_seconds": f"{result.seconds:.1f}",
    }
    return result.ema_model, meta


def build(names: list[str] | None = None, out_dir: Path | None = None, *, progress: bool = True,
          log: Callable[[str], None] = print) -> list[Path]:
    """Train the named models (all by default) and write them to `out_dir` (the package by default)."""
    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    chosen = [spec(n) for n in names] if names else list(SPECS)
    written = []
    # one intra-op thread: the shipped weights were built this way, and float sums then come out
    # in the same order on any machine, so a rebuild reproduces them (and it is faster on a busy CPU)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for s in chosen:
            start = time.perf_counter()
            model, meta = _train_one(s, progress)
            written.append(sl.save(model, out_dir / s.file, metadata=meta))
            log(f"{s.name}: loss {meta['final_loss']}, {time.perf_counter() - start:.0f} s -> {out_dir / s.file}")
    finally:
        torch.set_num_threads(threads)
    return written


def load_shipped(weights_dir: Path | None = None) -> dict[str, nn.Module]:
    """Every shipped model by name, in eval mode, gradients off. Missing files are an error that
    says how to build them."""
    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    models = {}
    for s in SPECS:
        f = weights_dir / s.file
        if not f.is_file():
            raise FileNotFoundError(f"shipped model {f} is missing: run `straightline build-models` (make models)")
        models[s.name] = sl.load(f).requires_grad_(False)
    return models
