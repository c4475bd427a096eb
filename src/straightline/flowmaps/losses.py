"""Three ways to learn a flow map from data alone: MeanFlow, shortcut models, Lagrangian self-distillation.

Each loss takes a flow map u(x, s, t) (a network such as `models.FlowMapMLP`) and a batch of data
x_1 [B, ...], draws noise x_0 = noise_fn(x_1) and pairs of times 0 <= s <= t <= 1, and returns a
scalar. A fraction `diagonal` of each batch has s = t: there u(x, s, s) is the velocity and the
loss is plain flow matching against x_1 - x_0 (the tangent condition). The rest of the batch
teaches the jumps, each paper its own way. Defaults are the papers' published settings,
converted to this toolkit's time (noise at 0, data at 1):

- MeanFlow (Geng et al. 2025, code github.com/Gsunshine/meanflow): the regression target
  v + (t - s)(v · ∇_x u + ∂_s u) with the conditional velocity v = x_1 - x_0 (`meanflow_target`);
  times: two logit-normal draws sorted (their P_mean = -0.4, P_std = 1.0 on the noise level
  1 - t, hence mean +0.4 here), 75 % of pairs with s = t (their best: 25 % s != t); adaptive
  loss weight w = 1 / (||Δ||^2 + c)^p with ||Δ||^2 the per-sample squared error summed over
  features, p = 1, c = 0.01 (their code's norm_p, norm_eps), w detached.
- Shortcut models (Frans et al., ICLR 2025, code github.com/kvfrans/shortcut-models): step sizes
  d = 1, 1/2, ..., 2/M (M = 128) in equal shares, start s on the grid of multiples of d; one
  jump of size d must equal two jumps of d/2 by the (stop-gradient) teacher; 1/4 of the batch is
  such self-consistency targets (the paper's k = 1/4), the rest flow matching at d = 0.
- Lagrangian self-distillation (Boffi, Albergo and Vanden-Eijnden 2025, "How to build a
  consistency model: learning flow maps via self-distillation"): off the diagonal, (s, t)
  uniform on the triangle s < t, the residual ∂_t X_{s,t}(x_s) - v(X_{s,t}(x_s), t), with the
  teacher velocity v = u(·, t, t) evaluated under stop-gradient at the detached jump (their
  "convex" stop-gradient); 75 % of the batch on the diagonal (their diag_fraction).

`teacher` (shortcut and LSD) is the flow map that makes the targets, under torch.no_grad(): the
student itself by default. `flowmaps.train` passes the EMA copy for shortcut models (their code
bootstraps from the EMA weights) and the current weights for LSD (the paper's stop-gradient).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor
from torch.func import jvp

from .._checks import check_time
from ..timesteps import TimeSampler, logit_normal
from .maps import FlowMap, check_batch, check_flow_map, check_output, jump, meanflow_pair, per_sample

__all__ = ["meanflow_loss", "shortcut_loss", "lsd_loss", "meanflow_times", "shortcut_times", "DEFAULT_DIAGONAL"]

DEFAULT_DIAGONAL = 0.75  # fraction of each batch with s = t, in all three papers' settings
_MEANFLOW_SAMPLER = logit_normal(0.4, 1.0)


def _check_fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _noise_and_split(x_1: Tensor, noise_fn: Callable[[Tensor], Tensor], diagonal: float) -> tuple[Tensor, int]:
    """Noise x_0 [B, ...] for the data batch and the number of rows with s = t (the first ones)."""
    x_1 = check_batch(x_1, "x_1")
    x_0 = noise_fn(x_1)  # [B, ...]
    if not isinstance(x_0, Tensor) or x_0.shape != x_1.shape:
        got = list(x_0.shape) if isinstance(x_0, Tensor) else type(x_0).__name__
        raise ValueError(f"noise_fn returned {got}, expected a tensor of shape {list(x_1.shape)} (same as x_1)")
    return x_0, round(x_1.shape[0] * _check_fraction(diagonal, "diagonal"))


def _interpolate(x_0: Tensor, x_1: Tensor, t: Tensor) -> Tensor:
    return (1 - per_sample(t, x_0)) * x_0 + per_sample(t, x_0) * x_1  # [B, ...]


def _squared(err: Tensor) -> Tensor:
    return err.flatten(1).pow(2).sum(1)  # [B]


def meanflow_times(n: int, n_diagonal: int, *, sampler: TimeSampler = _MEANFLOW_SAMPLER,
                   device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """MeanFlow's time pairs: s = min, t = max of two draws of `sampler`; the first n_diagonal have t = s."""
    a = sampler(n, device=device).to(dtype)  # [n]
    b = sampler(n, device=device).to(dtype)  # [n]
    check_time(a, n, "time_sampler's draw")
    s, t = torch.minimum(a, b), torch.maximum(a, b)  # [n] each
    return s, torch.cat([s[:n_diagonal], t[n_diagonal:]])


def meanflow_loss(u: FlowMap, x_1: Tensor, *, noise_fn: Callable[[Tensor], Tensor] = torch.randn_like,
                  time_sampler: TimeSampler = _MEANFLOW_SAMPLER, diagonal: float = DEFAULT_DIAGONAL,
                  weight_power: float = 1.0, weight_eps: float = 0.01) -> Tensor:
    """MeanFlow: E w ||u(x_s, s, t) - sg(v + (t - s) du/ds)||^2 with v = x_1 - x_0, x_s = (1 - s) x_0 + s x_1.

    `time_sampler` draws the two times of each pair (default logit-normal, mean 0.4, std 1),
    `diagonal` is the fraction of pairs with s = t (there the target is v: flow matching, no
    Jacobian-vector product is computed), and w = 1 / (||Δ||^2 + weight_eps)^weight_power is the
    detached adaptive weight (weight_power = 0: plain squared error).
    """
    check_flow_map(u)
    if not isinstance(weight_power, (int, float)) or weight_power < 0:
        raise ValueError(f"weight_power must be a number >= 0, got {weight_power!r}")
    if not isinstance(weight_eps, (int, float)) or not weight_eps > 0:
        raise ValueError(f"weight_eps must be a number > 0, got {weight_eps!r}")
    x_0, k = _noise_and_split(x_1, noise_fn, diagonal)
    s, t = meanflow_times(x_1.shape[0], k, sampler=time_sampler, device=x_1.device, dtype=x_1.dtype)  # [B] each
    x_s, v = _interpolate(x_0, x_1, s), x_1 - x_0  # [B, ...] each
    parts = []
    if k:
        parts.append(check_output(u(x_s[:k], s[:k], t[:k]), x_s[:k]) - v[:k])  # [k, ...]: s = t, target v
    if k < len(s):
        u_value, target = meanflow_pair(u, x_s[k:], s[k:], t[k:], v[k:])  # [B - k, ...] each
        parts.append(u_value - target)
    err = _squared(torch.cat(parts))  # [B]
    weight = 1.0 / (err.detach() + weight_eps) ** weight_power  # [B]
    return torch.mean(weight * err)


def _check_max_steps(max_steps: object) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 2 or max_steps & (max_steps - 1):
        raise ValueError(f"max_steps must be a power of two >= 2 (the finest step is 1 / max_steps), got {max_steps!r}")
    return max_steps


def shortcut_times(n: int, max_steps: int = 128, *, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Shortcut models' self-consistency pairs: jumps d = 1, 1/2, ..., 2/max_steps in equal shares,
    s uniform on the multiples of d (so s + d <= 1); returns (s, s + d), [n] each."""
    levels = int(math.log2(_check_max_steps(max_steps)))  # d = 2^-j for j = 0 .. levels - 1
    j = torch.arange(n, device=device) % levels  # [n]
    cells = (2.0**j).to(dtype)  # [n] jumps per unit time
    s = torch.floor(torch.rand(n, device=device, dtype=dtype) * cells) / cells  # [n] on the grid of d
    return s, s + 1.0 / cells


def shortcut_loss(u: FlowMap, x_1: Tensor, *, noise_fn: Callable[[Tensor], Tensor] = torch.randn_like,
                  diagonal: float = DEFAULT_DIAGONAL, max_steps: int = 128, teacher: FlowMap | None = None) -> Tensor:
    """Shortcut models: flow matching on the diagonal, and one jump = two half jumps of the teacher.

    For a self-consistency row with jump d from s: target = (u_T(x, s, s + d/2) + u_T(x', s + d/2,
    s + d)) / 2 with x' = x + (d / 2) u_T(x, s, s + d/2), the teacher u_T under no_grad. Mean
    squared error over features and batch, as in the paper.
    """
    check_flow_map(u)
    teacher = u if teacher is None else teacher
    check_flow_map(teacher, "teacher")
    x_0, k = _noise_and_split(x_1, noise_fn, diagonal)
    n_jump = x_1.shape[0] - k
    t_fm = torch.rand(k, device=x_1.device, dtype=x_1.dtype)  # [k]
    s_sc, t_sc = shortcut_times(n_jump, max_steps, device=x_1.device, dtype=x_1.dtype)  # [B - k] each
    s = torch.cat([t_fm, s_sc])  # [B]
    t = torch.cat([t_fm, t_sc])  # [B]
    x_s = _interpolate(x_0, x_1, s)  # [B, ...]
    with torch.no_grad():
        mid = (s_sc + t_sc) / 2  # [B - k]
        x_jump = x_s[k:]
        first = teacher(x_jump, s_sc, mid)  # [B - k, ...]
        second = teacher(x_jump + per_sample(mid - s_sc, x_jump) * first, mid, t_sc)
        target = torch.cat([x_1[:k] - x_0[:k], (first + second) / 2])  # [B, ...]
    return torch.mean((check_output(u(x_s, s, t), x_s) - target) ** 2)


def lsd_loss(u: FlowMap, x_1: Tensor, *, noise_fn: Callable[[Tensor], Tensor] = torch.randn_like,
             diagonal: float = DEFAULT_DIAGONAL, teacher: FlowMap | None = None) -> Tensor:
    """Lagrangian self-distillation: flow matching on the diagonal, and ∂_t X_{s,t}(x_s) = v_T(X_{s,t}(x_s), t) off it.

    Off the diagonal, (s, t) is uniform on the triangle 0 <= s < t <= 1, x_s = (1 - s) x_0 + s x_1,
    ∂_t X_{s,t} comes from one Jacobian-vector product in t, and the teacher velocity
    v_T(y, t) = u_T(y, t, t) is evaluated under no_grad at the detached jump. Squared errors are
    summed over features and averaged over the batch.
    """
    check_flow_map(u)
    teacher = u if teacher is None else teacher
    check_flow_map(teacher, "teacher")
    x_0, k = _noise_and_split(x_1, noise_fn, diagonal)
    n_off = x_1.shape[0] - k
    t_fm = torch.rand(k, device=x_1.device, dtype=x_1.dtype)  # [k]
    pair = torch.rand(2, n_off, device=x_1.device, dtype=x_1.dtype).sort(dim=0).values  # [2, B - k]
    s, t = pair[0], pair[1]  # [B - k] each, s <= t
    err = []
    if k:
        x_t = _interpolate(x_0[:k], x_1[:k], t_fm)  # [k, ...]
        err.append(_squared(check_output(u(x_t, t_fm, t_fm), x_t) - (x_1[:k] - x_0[:k])))  # [k]
    if n_off:
        x_s = _interpolate(x_0[k:], x_1[k:], s)  # [B - k, ...]
        x_t, dx_dt = jvp(lambda tt: jump(u, x_s, s, tt), (t,), (torch.ones_like(t),))  # [B - k, ...] each
        with torch.no_grad():
            v_teacher = teacher(x_t.detach(), t, t)  # [B - k, ...]
        err.append(_squared(dx_dt - v_teacher))  # [B - k]
    return torch.cat(err).mean()
