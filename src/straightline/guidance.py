"""Classifier-free guidance (Ho & Salimans 2022) for flow matching, and for the DDPM ε-model.

One network learns both fields: trained with condition dropout (the label replaced by the null
class `model.num_classes` with probability p_uncond), model(x, t, y) is the conditional field
and model(x, t, null) the unconditional one. Guidance extrapolates from one to the other:

    v_w(x, t) = v_uncond(x, t) + w (v_cond(x, t) - v_uncond(x, t))

**Convention used here: w is the weight on the conditional field**, so w = 0 is the
unconditional field, w = 1 the plain conditional one, and w > 1 strengthens the condition.
The other common convention (Ho & Salimans' original paper, and some codebases) writes
v = v_cond + w' (v_cond - v_uncond), i.e. w = 1 + w', where w' = 0 is the conditional field;
the w here equals that paper's 1 + w. diffusers' `guidance_scale` is the w used here.

For a Gaussian path the velocity, the noise prediction and the score are affine in one another
with coefficients that depend on t only, so the same combination of ε-predictions is the same
guidance: `guided_eps` applies it to a `diffusion` ε-model (sample with
`diffusion.ddim_sample(guided_eps(model, y, w), x_T, schedule=..., steps=...)`). In score terms
w > 1 samples (approximately, along the path) from p(x) p(y | x)^w: the classifier's
probability sharpened, which trades diversity for adherence to the class.

Each evaluation of a guided field runs the network once on a doubled batch ([x; x] with
[y; null]), which a solver counts as one function evaluation (NFE), and costs two.

Conditions: class labels for a model with `num_classes` (null = the label num_classes), or float
vectors [B, cond_dim] for a model with `cond_dim` (null = a row of NaN, embedded by the model's
learned null embedding; see `straightline.conditions`). Extra keyword conditions given to
`guided_velocity` are passed to both halves (tensors with one row per sample are doubled).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .conditions import condition_kind, null_condition
from .solvers import integrate
from .training import TrainResult, train

__all__ = ["guided_velocity", "guided_eps", "train_guided", "sample_guided"]

ConditionalModel = Callable[..., Tensor]  # model(x [B, ...], t [B], y [B] | None) -> [B, ...]


def _num_classes(model: object) -> int:
    n = getattr(model, "num_classes", None)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(
            f"guidance needs a class-conditional model with num_classes (a positive integer), got num_classes={n!r}"
        )
    return n


def _labels(y: Tensor | int, num_classes: int) -> Tensor:
    """Check class labels (an int or an integer tensor [B]) against 0..num_classes-1."""
    y = torch.as_tensor(y)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool or y.ndim > 1:
        raise ValueError(
            f"y must be an integer class label or a tensor [B] of them, got dtype {y.dtype}, shape {list(y.shape)}"
        )
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"class labels must be in 0..{num_classes - 1} (num_classes={num_classes}; "
            f"{num_classes} is the null class), got values in [{int(y.min())}, {int(y.max())}]"
        )
    return y.long()


def _check_w(w: float) -> float:
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
        raise ValueError(f"guidance weight w must be a finite number (0: unconditional, 1: conditional), got {w!r}")
    return float(w)


def _vectors(y: Tensor, cond_dim: int) -> Tensor:
    """Check float condition vectors: [cond_dim] (one for all), [B, cond_dim], or [B] if cond_dim = 1."""
    y = torch.as_tensor(y)
    if not y.is_floating_point():
        raise ValueError(f"a model with cond_dim={cond_dim} takes float condition vectors, got dtype {y.dtype}")
    if y.ndim == 0 and cond_dim == 1:
        y = y.reshape(1)
    if y.ndim == 1 and cond_dim == 1 and y.shape[0] != 1:
        y = y[:, None]  # [B, 1]
    if y.shape[-1:] != (cond_dim,) or y.ndim > 2:
        raise ValueError(f"condition vectors must have shape [{cond_dim}] or [B, {cond_dim}], got {list(y.shape)}")
    if bool(torch.isnan(y).any()):
        raise ValueError("condition vectors must not contain NaN (a row of NaN is the null condition that guidance adds)")
    return y


def _double(value: Any, batch: int) -> Any:
    """A keyword condition for the doubled batch: [c; c] if it has one row per sample."""
    if isinstance(value, Tensor) and value.ndim >= 1 and value.shape[0] == batch:
        return torch.cat([value, value])
    return value


class _Guided:
    """v_w(x, t) = v_u + w (v_c - v_u), one network call on the doubled batch."""

    def __init__(self, model: ConditionalModel, y: Tensor | int, w: float, cond: dict[str, Any] | None = None):
        self.kind = condition_kind(model) if getattr(model, "cond_dim", None) is not None else "class"
        if self.kind == "class":
            self.num_classes = _num_classes(model)
            y = _labels(y, self.num_classes)
        else:
            y = _vectors(y, model.cond_dim)
        self.model, self.y, self.w, self.cond = model, y, _check_w(w), cond or {}

    def _condition(self, batch: int, device: torch.device) -> Tensor:
        """This batch's conditions: labels [B] or vectors [B, cond_dim], on the device."""
        y = self.y.to(device)
        one = y.ndim == 0 if self.kind == "class" else y.ndim == 1
        y = y.expand(batch, *y.shape) if one else y
        if y.shape[0] != batch:
            raise ValueError(f"y must have one condition per sample ({batch}), got {list(y.shape)}")
        return y

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        batch = x.shape[0]
        y = self._condition(batch, x.device)  # [B] or [B, cond_dim]
        y = y.to(x.dtype) if self.kind == "vector" else y
        both = torch.cat([y, null_condition(self.model, y)])  # [2B, ...]: conditional, then null
        extra = {k: _double(v, batch) for k, v in self.cond.items()}
        out = self.model(torch.cat([x, x]), torch.cat([t, t]), both, **extra)  # [2B, ...]
        v_cond, v_uncond = out[:batch], out[batch:]  # [B, ...] each
        return v_uncond + self.w * (v_cond - v_uncond)

    def __repr__(self) -> str:
        return f"guided(w={self.w}, model={self.model!r})"


def guided_velocity(model: ConditionalModel, y: Tensor | int, w: float, **cond: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """The guided velocity field v(x, t) = v_uncond + w (v_cond - v_uncond) for conditions `y`.

    `model(x, t, y, **cond)` is a conditional velocity field: class-conditional (`num_classes`;
    `y` one label for every sample or a tensor [B] of labels in 0..num_classes-1) or
    vector-conditional (`cond_dim`; `y` a float vector [cond_dim] for every sample or [B, cond_dim]).
    `w` is any finite number (0: unconditional, 1: conditional, > 1: guided). Extra keyword
    conditions are passed to both halves. The result is a plain v(x, t) for `solvers.integrate`.
    """
    return _Guided(model, y, w, cond)


def guided_eps(model: ConditionalModel, y: Tensor | int, w: float) -> Callable[[Tensor, Tensor], Tensor]:
    """ε-guidance for a class-conditional `diffusion` ε-model: ε_uncond + w (ε_cond - ε_uncond).

    The same combination as `guided_velocity` (see the module docstring); pass the result to
    `diffusion.ddim_sample` or `diffusion.ddpm_sample` as the model.
    """
    return _Guided(model, y, w)


def train_guided(
    model: nn.Module,
    data: Tensor,
    labels: Tensor,
    *,
    steps: int,
    p_uncond: float = 0.1,
    **kwargs,
) -> TrainResult:
    """Train a class-conditional velocity field with condition dropout, ready for guidance.

    Delegates to `training.train(model, data, labels=labels, label_dropout=p_uncond, ...)`;
    keyword arguments are those of `train`. `p_uncond` in (0, 1) is the probability that a label
    is replaced by the null class, which is how the unconditional field gets trained.
    """
    num_classes = _num_classes(model)
    if isinstance(p_uncond, bool) or not isinstance(p_uncond, (int, float)) or not 0 < p_uncond < 1:
        raise ValueError(f"p_uncond must be in (0, 1) (the unconditional field needs some training), got {p_uncond!r}")
    if not isinstance(labels, Tensor) or labels.ndim != 1:
        raise ValueError(f"labels must be an integer tensor [N], got {getattr(labels, 'shape', type(labels).__name__)}")
    labels = _labels(labels, num_classes)
    for name in ("labels", "label_dropout"):
        if name in kwargs:
            raise ValueError(f"pass labels positionally and the dropout as p_uncond, not {name}=")
    return train(model, data, steps=steps, labels=labels, label_dropout=float(p_uncond), **kwargs)


def sample_guided(
    model: ConditionalModel,
    x_0: Tensor,
    y: Tensor | int,
    w: float,
    *,
    steps: int = 100,
    method: str = "euler",
) -> Tensor:
    """Integrate the guided field from noise x_0 [B, ...] at t = 0 to t = 1; returns [B, ...].

    `steps` and `method` are those of `solvers.integrate` (euler, midpoint, heun, rk4, dopri5).
    For the trajectory or the NFE use `solvers.integrate(guided_velocity(model, y, w), x_0, ...)`.
    """
    return integrate(guided_velocity(model, y, w), x_0, steps=steps, method=method).x
