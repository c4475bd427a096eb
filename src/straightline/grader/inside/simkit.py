"""The "run it in the simulation" kit: what a passing Build-It function drives, on both sides.

Like `probes.py`, this file is used inside the sandbox (mounted next to the worker, which may
import only the standard library, torch and these two files) and on the trusted side (which runs
the same pipeline with the toolkit's reference function, so the two results differ only by the
learner's function). Everything is described by JSON-able numbers the trusted side chooses:

    mixture   {"means": [[..], ..], "stds": [..], "weights": [..]}   an isotropic Gaussian mixture;
              its marginal velocity under the linear path x_t = (1 - t) x_0 + t x_1 is in closed
              form (the same formula as `straightline.oracles.GaussianMixture.velocity`; a test
              pins the two together)

Two runs:

- `euler_run(fn, spec)`: the learner's `euler_sample(model, x_0, steps)` integrates the exact
  velocity field of the mixture (`MixtureField`, which records where it was evaluated, so the
  trajectories of the first particles can be drawn);
- `train_run(loss_fn, spec)`: a small MLP (`TinyVelocityNet`, seeded) is trained for a few
  hundred Adam steps with `loss_fn(model, x_1)` on fresh batches of the mixture, then sampled
  with plain Euler steps. With `"model": "flowmap"` in the spec the learner's function is a
  MeanFlow target instead (`flowmap_train_run`): a small flow-map MLP (`TinyFlowMapNet`) is
  trained to regress onto `target_fn(model, x_s, s, t, v)` and sampled in one jump.

Both return plain lists of numbers. Inside the sandbox these numbers are untrusted: the trusted
side checks their shapes, computes every distance itself, and never records a verdict from them.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor, nn

__all__ = [
    "MAX_PATH_PARTICLES",
    "MixtureField",
    "TinyFlowMapNet",
    "TinyVelocityNet",
    "euler_run",
    "flowmap_train_run",
    "mixture_velocity",
    "sample_mixture",
    "train_run",
]

#: Trajectories are kept for this many particles only (enough to draw, small to send).
MAX_PATH_PARTICLES = 64


def _mixture(spec: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    means = torch.tensor(spec["means"], dtype=torch.float64)  # [K, D]
    stds = torch.tensor(spec["stds"], dtype=torch.float64).reshape(-1)  # [K]
    weights = torch.tensor(spec["weights"], dtype=torch.float64).reshape(-1)  # [K]
    return means, stds, weights


def mixture_velocity(spec: dict[str, Any], x: Tensor, t: Tensor) -> Tensor:
    """u_t(x) = E[x_1 - x_0 | x_t = x] for the mixture `spec`; x [B, D], t [B] (or a number)."""
    means, stds, weights = _mixture(spec)
    x64 = x.detach().to(torch.float64).reshape(x.shape[0], -1)  # [B, D]
    t64 = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    if t64.numel() == 1:
        t64 = t64.expand(x64.shape[0])
    tt = t64.reshape(-1, 1)  # [B, 1]
    dim = x64.shape[1]
    mean = tt[:, :, None] * means.T[None]  # [B, D, K]   t mu_k
    var = tt**2 * stds[None] ** 2 + (1 - tt) ** 2  # [B, K]
    diff = x64[:, :, None] - mean  # [B, D, K]
    log_n = -0.5 * (diff**2).sum(1) / var - 0.5 * dim * torch.log(2 * math.pi * var)  # [B, K]
    log_joint = torch.log(weights)[None] + log_n  # [B, K]
    resp = torch.softmax(log_joint, dim=1)  # [B, K]
    v = var[:, None, :]  # [B, 1, K]
    e_x1 = means.T[None] + tt[:, :, None] * stds[None, None, :] ** 2 / v * diff  # [B, D, K]
    e_x0 = (1 - tt[:, :, None]) / v * diff  # [B, D, K]
    return (resp[:, None, :] * (e_x1 - e_x0)).sum(-1).reshape(x.shape)  # like x


def sample_mixture(spec: dict[str, Any], n: int, generator: torch.Generator) -> Tensor:
    """n float32 points of the mixture, drawn with `generator`."""
    means, stds, weights = _mixture(spec)
    idx = torch.multinomial(weights, n, replacement=True, generator=generator)  # [n]
    noise = torch.randn(n, means.shape[1], dtype=torch.float64, generator=generator)  # [n, D]
    return (means[idx] + stds[idx, None] * noise).float()


def _rows(x: Any, keep: int) -> list[list[float]] | None:
    """The first `keep` rows of a [B, D] tensor as lists of floats (None if x is not one)."""
    if not isinstance(x, Tensor) or x.ndim != 2:
        return None
    return [[float(v) for v in row] for row in x[:keep].detach().to("cpu", torch.float64).tolist()]


class MixtureField(nn.Module):
    """The mixture's exact velocity as a model(x, t); records x of the first particles at every call."""

    def __init__(self, spec: dict[str, Any], keep: int = MAX_PATH_PARTICLES, max_calls: int = 1000):
        super().__init__()
        self.spec, self.keep, self.max_calls = dict(spec), keep, max_calls
        self.scale = nn.Parameter(torch.ones(()))  # so next(model.parameters()) works
        self.visited: list[list[list[float]] | None] = []
        self.calls = 0

    def forward(self, x: Tensor, t: Any) -> Tensor:
        self.calls += 1
        if len(self.visited) < self.max_calls:
            self.visited.append(_rows(x, self.keep))
        return mixture_velocity(self.spec, x, t).to(x.dtype) * self.scale.detach().to(x.dtype)


def euler_run(fn: Callable[..., Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Run the learner's `euler_sample(field, x_0, steps)` on the mixture's exact field.

    spec: {"mixture", "x_0": [[..], ..], "steps"}. Returns {"final": rows, "visited": [rows per
    call], "calls"}; raises whatever the learner's function raises, or ValueError when it returns
    something other than the particles.
    """
    x_0 = torch.tensor(spec["x_0"], dtype=torch.float32)  # [N, D]
    field = MixtureField(spec["mixture"])
    with torch.no_grad():
        out = fn(field, x_0.clone(), int(spec["steps"]))
    if not isinstance(out, Tensor) or tuple(out.shape) != tuple(x_0.shape):
        shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"euler_sample returned {shape}; the simulation needs the particles, shape {list(x_0.shape)}")
    final = [[float(v) for v in row] for row in out.detach().to("cpu", torch.float64).tolist()]
    return {"final": final, "visited": [v for v in field.visited if v is not None][:1000], "calls": field.calls}


class TinyVelocityNet(nn.Module):
    """v(x, t) for 2-D points: [x, t, sin 2πt, cos 2πt] -> 64 -> 64 -> 2 with SiLU (about 4.6k weights)."""

    def __init__(self, dim: int = 2, hidden: int = 64):
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(
            nn.Linear(dim + 3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, dim)
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], self.dim)  # [B, D]
        tt = torch.as_tensor(t, dtype=flat.dtype).reshape(-1, 1).expand(flat.shape[0], 1)  # [B, 1]
        angle = 2 * math.pi * tt
        features = torch.cat([flat, tt, torch.sin(angle), torch.cos(angle)], dim=1)  # [B, D + 3]
        return self.net(features).reshape(x.shape)


def _check_loss(loss: Any, step: int) -> Tensor:
    if not isinstance(loss, Tensor):
        raise TypeError(f"at training step {step} the loss was a {type(loss).__name__}, not a tensor")
    if loss.numel() != 1:
        raise ValueError(f"at training step {step} the loss had shape {list(loss.shape)}, not a single number")
    if not loss.requires_grad:
        raise ValueError(f"at training step {step} no gradient reached the model through the loss")
    return loss.reshape(())


def train_run(loss_fn: Callable[..., Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Train a seeded `TinyVelocityNet` with `loss_fn(model, x_1)` and sample it.

    spec: {"mixture", "seed", "train_steps", "batch", "lr", "x_0": [[..], ..] (the starting
    noise of the samples), "sample_steps"}. Returns {"losses": [per step], "final": rows,
    "visited": [rows per sampling step]}. A loss that stops being finite ends the training early
    (the losses then end with that value).
    """
    if spec.get("model") == "flowmap":
        return flowmap_train_run(loss_fn, spec)
    seed = int(spec["seed"])
    torch.manual_seed(seed + 2)
    model = TinyVelocityNet()  # initialised from its own seed
    torch.manual_seed(seed)  # the loss's own draws (noise, times) come from the global generator
    data_gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=float(spec["lr"]))
    losses: list[float] = []
    for step in range(int(spec["train_steps"])):
        x_1 = sample_mixture(spec["mixture"], int(spec["batch"]), data_gen)  # [batch, D]
        loss = _check_loss(loss_fn(model, x_1), step)
        value = float(loss.detach())
        losses.append(value)
        if not math.isfinite(value):
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    x = torch.tensor(spec["x_0"], dtype=torch.float32)  # [N, D]
    steps = int(spec["sample_steps"])
    visited = [_rows(x, MAX_PATH_PARTICLES)]
    with torch.no_grad():
        for k in range(steps):
            t = torch.full((x.shape[0],), k / steps)
            x = x + model(x, t) / steps
            visited.append(_rows(x, MAX_PATH_PARTICLES))
    final = [[float(v) for v in row] for row in x.to(torch.float64).tolist()]
    return {"losses": losses, "final": final, "visited": visited[:-1]}


class TinyFlowMapNet(nn.Module):
    """u(x, s, t) for 2-D points: [x, s, t - s, sin 2πs, cos 2πs] -> 64 -> 64 -> 2 with SiLU."""

    def __init__(self, dim: int = 2, hidden: int = 64):
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(
            nn.Linear(dim + 4, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, dim)
        )

    def forward(self, x: Tensor, s: Tensor, t: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], self.dim)  # [B, D]
        ss, tt = s.reshape(-1, 1).to(flat.dtype), t.reshape(-1, 1).to(flat.dtype)  # [B, 1] each
        angle = 2 * math.pi * ss
        features = torch.cat([flat, ss, tt - ss, torch.sin(angle), torch.cos(angle)], dim=1)  # [B, D + 4]
        return self.net(features).reshape(x.shape)


def flow_map_times(n: int, diagonal: float) -> tuple[Tensor, Tensor]:
    """n pairs s <= t from two sorted uniform draws; the first round(n * diagonal) have t = s."""
    a, b = torch.rand(n), torch.rand(n)
    s, t = torch.minimum(a, b), torch.maximum(a, b)  # [n] each
    k = round(n * diagonal)
    return s, torch.cat([s[:k], t[k:]])


def _flowmap_step_loss(target_fn: Callable[..., Any], model: nn.Module, x_1: Tensor, diagonal: float, step: int) -> Tensor:
    """MeanFlow's loss on one batch, with the learner's target (mean squared error, no weighting)."""
    x_0 = torch.randn_like(x_1)  # [B, D]
    s, t = flow_map_times(x_1.shape[0], diagonal)  # [B] each
    x_s = (1 - s[:, None]) * x_0 + s[:, None] * x_1  # [B, D]
    target = target_fn(model, x_s, s, t, x_1 - x_0)
    if not isinstance(target, Tensor) or target.shape != x_s.shape:
        got = list(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"at training step {step} meanflow_target returned {got}, not a tensor shaped like x {list(x_s.shape)}")
    if target.requires_grad:
        raise ValueError(f"at training step {step} the target still carried a gradient; return it detached")
    return ((model(x_s, s, t) - target) ** 2).mean()


def flowmap_train_run(target_fn: Callable[..., Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Train a seeded `TinyFlowMapNet` with the learner's MeanFlow target, then jump in one step.

    spec: as `train_run`, plus "diagonal" (the fraction of pairs with s = t). Returns
    {"losses", "final": x_0 + u(x_0, 0, 1), "visited": [x_0 rows]}.
    """
    seed = int(spec["seed"])
    torch.manual_seed(seed + 2)
    model = TinyFlowMapNet()
    torch.manual_seed(seed)
    data_gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=float(spec["lr"]))
    losses: list[float] = []
    for step in range(int(spec["train_steps"])):
        x_1 = sample_mixture(spec["mixture"], int(spec["batch"]), data_gen)  # [batch, D]
        loss = _flowmap_step_loss(target_fn, model, x_1, float(spec["diagonal"]), step)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    x = torch.tensor(spec["x_0"], dtype=torch.float32)  # [N, D]
    n = x.shape[0]
    with torch.no_grad():
        final = x + model(x, torch.zeros(n), torch.ones(n))  # one jump from t = 0 to t = 1
    rows = [[float(v) for v in row] for row in final.to(torch.float64).tolist()]
    return {"losses": losses, "final": rows, "visited": [_rows(x, MAX_PATH_PARTICLES)]}
