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
    dataset: str  # a toy dataset name, "digits", or "rotations" (straightline.so3.rotation_dataset)
    coupling: str = "independent"  # independent | exact_ot
    path: str = "linear"  # linear | cosine
    steps: int = 4000  # Adam steps (for a reflow round: steps on the fixed pairs)
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    #: flow (flow matching, MLP) | reflow (one round from `base`) | ddpm (ε-prediction, same MLP)
    #: | mmdit (the class-conditional digits transformer) | so3 (a flow on rotations)
    #: | flowmap (a FlowMapMLP u(x, s, t) trained from scratch by `straightline.flowmaps.train`)
    kind: str = "flow"
    base: str | None = None  # reflow: the model whose own pairs it is retrained on
    method: str | None = None  # flowmap: meanflow | shortcut | lsd

    @property
    def file(self) -> str:
        return f"{self.name}.safetensors"


#: The 2-D flow models train 8000 Adam steps (12000 for 8gaussians-exact_ot): with 3000-4000 they
#: left 11-20 % of their samples off the data at 50 Euler steps (tests/course/test_shipped_models.py
#: measures it); the width was never the limit.
#: The 2-D networks (flow, reflow and DDPM alike). 96 wide reaches the same W2 as 128 on these
#: datasets (64 did not on two_clusters: 0.19 against 0.12 at 50 steps) at a little over half the
#: cost: a 1000-particle, 50-step trajectory is ~45 ms on one core instead of ~80 ms.
MLP_2D = {"hidden": 96, "depth": 3}

SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("two_clusters-independent", "two_clusters", steps=8000),
    ModelSpec("two_clusters-exact_ot", "two_clusters", coupling="exact_ot", steps=8000),
    ModelSpec("moons-independent", "moons", steps=8000),
    ModelSpec("moons-exact_ot", "moons", coupling="exact_ot", steps=8000),
    ModelSpec("8gaussians-independent", "8gaussians", steps=8000),
    ModelSpec("8gaussians-exact_ot", "8gaussians", coupling="exact_ot", steps=12000),
    ModelSpec("digits", "digits", steps=5000, batch_size=256, lr=1e-3),
    # Chapter 6: three rounds of reflow from the independent-coupling 8gaussians model, 16000 steps of
    # batch 1024 each: with 3000 of 256 the rounds left 9.8, 10.1 and 10.7 % of their samples off the
    # data at 50 Euler steps (the smoothed boundaries between the modes' basins); 16000 of 256 still
    # 7.5, 7.8 and 8.1-8.3 %; now 7.2, 7.4 and 7.6 %
    ModelSpec("8gaussians-reflow1", "8gaussians", steps=16000, batch_size=1024, kind="reflow",
              base="8gaussians-independent", seed=1),
    ModelSpec("8gaussians-reflow2", "8gaussians", steps=16000, batch_size=1024, kind="reflow", base="8gaussians-reflow1",
              seed=2),
    ModelSpec("8gaussians-reflow3", "8gaussians", steps=16000, batch_size=1024, kind="reflow", base="8gaussians-reflow2",
              seed=3),
    # Chapter 7 (jumping): one reflow round on moons, and two flow maps learned from scratch on moons
    ModelSpec("moons-reflow1", "moons", steps=3000, kind="reflow", base="moons-independent", seed=1),
    ModelSpec("moons-meanflow", "moons", steps=8000, kind="flowmap", method="meanflow"),
    ModelSpec("moons-shortcut", "moons", steps=8000, kind="flowmap", method="shortcut"),
    # Chapter 9: a DDPM ε-model with the same MLP on the same data as moons-independent; 30000 steps: with
    # 6000 it left 17 % of its DDIM samples (50 and 100 steps) off the data, W2 1.9x the floor
    ModelSpec("moons-ddpm", "moons", steps=30000, kind="ddpm"),
    # Chapter 9: a digits ε-model, the MLP family and recipe of `digits` at half its width (file < 1.5 MB)
    ModelSpec("digits-ddpm", "digits", steps=5000, batch_size=256, lr=1e-3, kind="ddpm"),
    # Chapter 8: a flow on SO(3) and the tiny class-conditional MMDiT
    ModelSpec("rotations-so3", "rotations", steps=3000, kind="so3"),
    ModelSpec("digits-mmdit", "digits", steps=2500, batch_size=128, lr=1e-3, kind="mmdit"),
)

#: reflow rounds: Euler-free pairs (RK4 with this many steps) and how many of them
REFLOW_PAIRS, REFLOW_SOLVE_STEPS = 20_000, 50
#: the digits ε-model: `digits`' MLP (depth 4, 64-wide time and label embeddings, label dropout 0.1)
#: at hidden 256 instead of 512, so that its file stays near 1 MB
MLP_DIGITS_DDPM = {"hidden": 256, "depth": 4, "time_dim": 64, "num_classes": 10}
#: the DDPM model's schedule (straightline.diffusion.make_schedule)
DDPM_SCHEDULE, DDPM_T = "linear", 1000
#: flow maps: the same widths as the 2-D flows; MeanFlow with uniform time pairs and half the batch
#: on s = t (bench/flowmaps.py: the paper's logit-normal pairs leave the one-step corner (0, 1) untrained
#: on 2-D data), shortcut with the paper's settings (EMA teacher)
FLOWMAP_OPTIONS = {"meanflow": {"time_sampler": sl.timesteps.uniform(), "diagonal": 0.5}, "shortcut": {}, "lsd": {}}
#: the MMDiT's size: 16 patch tokens of 2 x 2 pixels and 4 label tokens, two joint blocks
MMDIT_CONFIG = {"dim": 64, "depth": 2, "heads": 4, "patch": 2, "label_tokens": 4}


def spec(name: str) -> ModelSpec:
    for s in SPECS:
        if s.name == name:
            return s
    raise ValueError(f"unknown shipped model {name!r}; accepted: {', '.join(s.name for s in SPECS)}")


_PATHS = {"linear": sl.LinearPath, "cosine": sl.CosinePath}
_COUPLINGS: dict[str, Callable | None] = {"independent": None, "exact_ot": sl.couplings.exact_ot}


def _base_model(name: str, out_dir: Path) -> nn.Module:
    """A reflow round's input: the file just built in `out_dir` if there is one, else the shipped one."""
    for folder in (out_dir, WEIGHTS_DIR):
        if (folder / spec(name).file).is_file():
            return sl.load(folder / spec(name).file)
    raise FileNotFoundError(f"reflow needs {name!r} first: build it (straightline build-models --only {name})")


def _train_so3(s: ModelSpec, progress: bool):
    """Conditional flow matching on SO(3): Haar noise to `rotation_dataset`, geodesic pairs."""
    model = sl.so3.SO3VelocityMLP(hidden=128, depth=3)
    data = sl.so3.rotation_dataset(20_000, seed=s.seed)  # [20000, 3, 3]
    generator = torch.Generator().manual_seed(s.seed)

    def draw() -> dict[str, torch.Tensor]:  # data R_1 [B, 3, 3] as x, noise R_0 [B, 3, 3] and times t [B]
        idx = torch.randint(len(data), (s.batch_size,), generator=generator)
        R_0 = sl.so3.random_rotations(s.batch_size, generator=generator)
        t = torch.rand(s.batch_size, generator=generator)
        return {"x": data[idx], "R_0": R_0, "t": t}

    def loss_fn(net: nn.Module, R_1: torch.Tensor, R_0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return sl.so3.so3_cfm_loss(net, R_1, R_0=R_0, t=t)

    return sl.train(model, draw, loss=loss_fn, steps=s.steps, batch_size=s.batch_size, lr=s.lr, ema=0.999,
                    seed=s.seed, progress=progress, desc="training on SO(3)")


def _train_reflow(s: ModelSpec, progress: bool, out_dir: Path) -> tuple[nn.Module, dict[str, str]]:
    """One reflow round from the spec's base model, with its measurements as metadata."""
    base = _base_model(s.base, out_dir)
    started = time.perf_counter()
    rounds = sl.reflow_rounds(
        base, rounds=1, n_pairs=REFLOW_PAIRS, steps=REFLOW_SOLVE_STEPS, train_steps=s.steps,
        batch_size=s.batch_size, lr=s.lr, seed=s.seed, reference=s.dataset, quality_steps=(1,),
        eval_n=1000, progress=progress,
    )
    new = rounds[-1]
    meta = {
        "spec": s.name, "dataset": s.dataset, "kind": s.kind, "base": s.base, "steps": str(s.steps),
        "seed": str(s.seed), "final_loss": f"{new.loss:.5f}", "straightness": f"{new.straightness:.5f}",
        "w2_one_step": f"{new.quality[1]:.5f}", "train_seconds": f"{time.perf_counter() - started:.1f}",
    }
    return new.model, meta


def _train_one(s: ModelSpec, progress: bool, out_dir: Path = WEIGHTS_DIR) -> tuple[nn.Module, dict[str, str]]:
    torch.manual_seed(s.seed)
    if s.kind == "reflow":
        return _train_reflow(s, progress, out_dir)
    if s.kind == "ddpm" and s.dataset == "digits":
        images, labels = sl.data.digits()
        model = sl.models.MLP(dim=64, **MLP_DIGITS_DDPM)
        result = sl.diffusion.train_ddpm(model, images, labels=labels, label_dropout=0.1, steps=s.steps,
                                         schedule=DDPM_SCHEDULE, T=DDPM_T, batch_size=s.batch_size, lr=s.lr,
                                         seed=s.seed, progress=progress)
    elif s.kind == "ddpm":
        model = sl.models.MLP(dim=2, **MLP_2D)
        result = sl.diffusion.train_ddpm(model, s.dataset, steps=s.steps, schedule=DDPM_SCHEDULE, T=DDPM_T,
                                         batch_size=s.batch_size, lr=s.lr, seed=s.seed, progress=progress)
    elif s.kind == "flowmap":
        model = sl.models.FlowMapMLP(dim=2, **MLP_2D)
        result = sl.flowmaps.train(model, s.dataset, method=s.method, steps=s.steps, batch_size=s.batch_size, lr=s.lr,
                                   seed=s.seed, progress=progress, **FLOWMAP_OPTIONS[s.method])
    elif s.kind == "so3":
        result = _train_so3(s, progress)
    elif s.kind == "mmdit":
        images, labels = sl.data.digits()
        model = sl.models.MMDiT(num_classes=10, **MMDIT_CONFIG)
        result = sl.train(model, images, labels=labels, label_dropout=0.1, steps=s.steps, batch_size=s.batch_size,
                          lr=s.lr, seed=s.seed, progress=progress)
    elif s.dataset == "digits":
        images, labels = sl.data.digits()
        # an MLP on the 64 pixels: as good as a small conv net on 8x8 images, and ten times cheaper
        model = sl.models.MLP(dim=64, hidden=512, depth=4, time_dim=64, num_classes=10)
        result = sl.train(
            model, images, labels=labels, label_dropout=0.1, steps=s.steps, batch_size=s.batch_size,
            lr=s.lr, seed=s.seed, progress=progress,
        )
    else:
        model = sl.models.MLP(dim=2, **MLP_2D)
        result = sl.train(
            model, s.dataset, steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=s.seed,
            path=_PATHS[s.path](), coupling=_COUPLINGS[s.coupling], progress=progress,
        )
    meta = {
        "spec": s.name, "dataset": s.dataset, "coupling": s.coupling, "path": s.path, "kind": s.kind,
        **({"method": s.method} if s.method else {}),
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
            model, meta = _train_one(s, progress, out_dir)
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
