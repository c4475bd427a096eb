"""Distillation: a student velocity field that samples in few Euler steps what a teacher needs many for.

What a "step" is for the student: the student is an ordinary velocity field v_S(x, t), and
sampling it with K steps means K Euler steps of size 1/K on the uniform grid t_k = k / K,

    x_{k+1} = x_k + (1 / K) v_S(x_k, t_k),      k = 0 .. K - 1,

which is `sample(student, x_0, steps=K)` (`method="euler"`, the default). The student is tied to
that step count: it learns to jump, not to follow the teacher's field between grid points.

Two methods, both starting the student as a copy of the teacher (warm start):

- "progressive" (Salimans and Ho 2022, adapted from diffusion to ODE velocity fields): stage by
  stage, a student with N/2 steps learns to reproduce two steps of its teacher (N steps) with
  one of its own, and then becomes the next stage's teacher: N = teacher_steps, teacher_steps/2,
  ..., 2 * student_steps. The first teacher samples with `solver`; later teachers are students
  and sample with Euler. In each stage the teacher's trajectories from fresh noise give the
  training states x at the student's grid times t_k = 2 j Δ (Δ = 1 / N), and the state two
  teacher steps later, x'', gives the target: one Euler step of size 2Δ lands on x'' exactly when
  v_S(x, t_k) = (x'' - x) / (2Δ). The stage loss is the mean squared error of that velocity.
- "one_shot": generate pairs (x_0, Φ(x_0)) once, Φ = `solver` with `teacher_steps` steps, and train
  the student so that its K-step Euler sampler maps x_0 onto Φ(x_0), back-propagating through the
  K steps. The loss is the mean squared end-point error; for K = 1 it is exactly the regression
  of v_S(x_0, 0) onto x_1 - x_0.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int
from ._fitting import check_labels, conditioned, fit, fit_config, noise_spec, on_device, stage_config, tail_mean
from .loop import TrainConfig
from .solvers import METHODS, integrate

__all__ = ["DISTILL_METHODS", "DistillResult", "DistillStage", "distill"]

DISTILL_METHODS = ("progressive", "one_shot")


@dataclass
class DistillStage:
    """One training run of a distillation: a student with `student_steps` imitating `teacher_steps`."""

    stage: int  # 1, 2, ...
    teacher_steps: int
    student_steps: int
    losses: list[float] = field(default_factory=list)  # every training step's loss

    @property
    def loss(self) -> float:
        """Mean loss over the last 10% of the stage's steps."""
        return tail_mean(self.losses)


@dataclass
class DistillResult:
    """The distilled student and how it got there. Sample it with `student_steps` Euler steps."""

    student: nn.Module
    student_steps: int
    method: str
    stages: list[DistillStage]  # progressive: one per halving; one_shot: a single stage


def _halvings(teacher_steps: int, student_steps: int) -> int:
    """m with teacher_steps == student_steps * 2**m, m >= 1; ValueError naming the accepted values."""
    ratio, rest = divmod(teacher_steps, student_steps)
    if rest == 0 and ratio >= 2 and ratio & (ratio - 1) == 0:
        return ratio.bit_length() - 1
    accepted, k = [], teacher_steps
    while k % 2 == 0:
        k //= 2
        accepted.append(k)
    choices = ", ".join(map(str, accepted)) if accepted else "none: teacher_steps is odd"
    raise ValueError(
        f"progressive distillation halves the steps, so student_steps must be teacher_steps / 2^m for some m >= 1 "
        f"(for teacher_steps={teacher_steps}: {choices}), got {student_steps!r}"
    )


def _check_distill_args(
    method: str, solver: str, teacher_steps: int, student_steps: int, n_pairs: int, labels: Tensor | None
) -> None:
    """ValueError naming the first bad argument of `distill` and what it accepts."""
    check_choice(method, "method", DISTILL_METHODS)
    check_choice(solver, "solver", METHODS)
    check_positive_int(teacher_steps, "teacher_steps")
    check_positive_int(student_steps, "student_steps")
    check_positive_int(n_pairs, "n_pairs")
    check_labels(labels, n_pairs)


def _seeded_noise(n: int, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, seed: int) -> Tensor:
    """[n, *shape] standard normal noise from its own generator (the global random state is left alone)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=generator, dtype=dtype).to(device)


def _distill_one_shot(
    teacher: nn.Module, x_0: Tensor, labels: Tensor | None, teacher_steps: int, student_steps: int,
    solver: str, config: TrainConfig,
) -> DistillResult:
    """Train a copy of `teacher` so that its `student_steps`-step Euler sampler maps x_0 onto Φ(x_0)."""
    x_1 = integrate(conditioned(teacher, labels), x_0, steps=teacher_steps, method=solver).x  # [N, ...] Φ(x_0)

    def endpoint_loss(net: nn.Module, rows: Tensor) -> Tensor:  # rows [B]
        v = conditioned(net, None if labels is None else labels[rows])
        end = integrate(v, x_0[rows], steps=student_steps, method="euler", grad=True).x  # [B, ...]
        return torch.mean((end - x_1[rows]) ** 2)

    config = stage_config(config, 1, 1, seed=config.seed, desc=f"distil to {student_steps} step(s)")
    result = fit(copy.deepcopy(teacher), endpoint_loss, len(x_0), config)
    stage = DistillStage(stage=1, teacher_steps=teacher_steps, student_steps=student_steps, losses=result.losses)
    return DistillResult(student=result.ema_model, student_steps=student_steps, method="one_shot", stages=[stage])


def _two_step_targets(
    teacher: nn.Module, x_0: Tensor, labels: Tensor | None, n_teacher: int, solver: str
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Training rows (x, t, u, y) of a progressive stage: states at the student's grid times, and
    the velocity u that lands one student step (two teacher steps) on the teacher's trajectory."""
    traj = integrate(conditioned(teacher, labels), x_0, steps=n_teacher, method=solver, keep_path=True)
    x = traj.xs[0:-1:2]  # [N_t / 2, N, ...] states at the student's grid times
    t = traj.ts[0:-1:2]  # [N_t / 2]
    two_steps = (traj.xs[2::2] - x) / (traj.ts[2::2] - t).reshape(-1, *([1] * (x.ndim - 1)))  # [N_t / 2, N, ...]
    x, u = x.flatten(0, 1), two_steps.flatten(0, 1)  # [N_t / 2 * N, ...] inputs and target velocities
    t = t.repeat_interleave(len(x_0))  # [N_t / 2 * N] matching rows of x
    y = None if labels is None else labels.repeat(len(traj.ts) // 2)  # [N_t / 2 * N]
    return x, t, u, y


def _distill_progressive(
    teacher: nn.Module, noise: Callable[[int], Tensor], labels: Tensor | None, n_stages: int,
    teacher_steps: int, solver: str, config: TrainConfig,
) -> DistillResult:
    """Halve the step count `n_stages` times; each stage's student (its EMA copy) teaches the next."""
    stages: list[DistillStage] = []
    current, n_teacher, teacher_solver = teacher, teacher_steps, solver
    for s in range(1, n_stages + 1):
        x, t, u, y = _two_step_targets(current, noise(s), labels, n_teacher, teacher_solver)

        def velocity_loss(net: nn.Module, rows: Tensor, x=x, t=t, u=u, y=y) -> Tensor:  # rows [B]
            v = conditioned(net, None if y is None else y[rows])
            return torch.mean((v(x[rows], t[rows]) - u[rows]) ** 2)

        stage = stage_config(config, s, n_stages, seed=config.seed + s - 1,
                             desc=f"distil {n_teacher} -> {n_teacher // 2} steps")
        result = fit(copy.deepcopy(current), velocity_loss, len(x), stage)
        stages.append(DistillStage(s, teacher_steps=n_teacher, student_steps=n_teacher // 2, losses=result.losses))
        current, n_teacher, teacher_solver = result.ema_model, n_teacher // 2, "euler"
    return DistillResult(student=current, student_steps=n_teacher, method="progressive", stages=stages)


def distill(
    teacher: nn.Module,
    *,
    student_steps: int = 1,
    method: str = "progressive",
    teacher_steps: int = 64,
    solver: str = "rk4",
    n_pairs: int = 4096,
    labels: Tensor | None = None,
    shape: tuple[int, ...] | None = None,
    config: TrainConfig | None = None,
    **options: Any,
) -> DistillResult:
    """Distil `teacher` (a velocity field sampled with `teacher_steps` steps of `solver`) into a
    student that samples with `student_steps` Euler steps (see the module docstring for both methods).

    `method="progressive"` halves the step count stage by stage, `train_steps` optimizer steps per
    stage, each stage on the trajectories of `n_pairs` fresh noise points; `student_steps` must be
    teacher_steps / 2^m (m >= 1). `method="one_shot"` trains once for `train_steps` on `n_pairs`
    teacher pairs; any `student_steps` >= 1. The training is `config` (a `TrainConfig`) or, without
    one, 1000 steps, batch 256, lr 1e-3 and TrainConfig's other defaults (EMA 0.999 with warm-up,
    seed 0); every TrainConfig field can be given as a keyword (`train_steps` is its `steps`;
    device, grad_clip, amp, checkpoint, callback, ...; not val_data; resume for one-shot only, and
    progressive stage s checkpoints to PATH's name with `.runS` before the suffix). `ema` is the
    decay of each stage's averaged copy (the copy is the stage's result, and the next stage's
    teacher). `labels` [n_pairs] condition a class-conditional model; `shape` is the per-sample
    shape (default (teacher.dim,)). The teacher is not changed, and the global random state is left
    alone (same seed, same student).
    """
    _check_distill_args(method, solver, teacher_steps, student_steps, n_pairs, labels)
    config = fit_config(config, options, caller="distill", desc="distillation", defaults={"steps": 1000})
    n_stages = _halvings(teacher_steps, student_steps) if method == "progressive" else 1
    stage_config(config, 1, n_stages, seed=config.seed, desc=config.desc)  # ValueError for resume with stages > 1
    teacher = on_device(teacher, config)
    shape, dtype, device = noise_spec(teacher, shape)
    labels = None if labels is None else labels.to(device)

    def noise(stage: int) -> Tensor:  # [n_pairs, ...] fresh, seeded noise for a stage
        return _seeded_noise(n_pairs, shape, dtype, device, config.seed + 1000 * stage)

    if method == "one_shot":
        return _distill_one_shot(teacher, noise(1), labels, teacher_steps, student_steps, solver, config)
    return _distill_progressive(teacher, noise, labels, n_stages, teacher_steps, solver, config)
