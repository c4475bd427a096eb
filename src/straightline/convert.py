"""Conversions between the four parameterisations of a flow on the linear path.

On the linear path x_t = (1 - t) x_0 + t x_1, with noise x_0 ~ N(0, I) at t = 0 and data x_1 at
t = 1, a network may predict any one of

| kind       | quantity                          | name here        |
|------------|-----------------------------------|------------------|
| `velocity` | v_t(x) = E[x_1 - x_0 | x_t = x]   | v                |
| `x1`       | E[x_1 | x_t = x] (the clean data) | x1_hat           |
| `noise`    | E[x_0 | x_t = x] (the noise)      | x0_hat ("eps")   |
| `score`    | ∇_x log p_t(x)                    | score            |

and all four carry the same information. Averaging x = (1 - t) x_0 + t x_1 and x_1 - x_0 over
the posterior of (x_0, x_1) given x_t = x gives

    x1_hat = x + (1 - t) v          v = (x1_hat - x) / (1 - t)
    x0_hat = x - t v                v = (x - x0_hat) / t
    score  = -x0_hat / (1 - t)      (Tweedie: x_t given x_1 is N(t x_1, (1 - t)^2 I))
    score  = -(x - t v) / (1 - t)   v = (x + (1 - t) score) / t

Singular ends. The maps *to* velocity from `x1` divide by 1 - t, and the map velocity -> score
does too: they are singular at t = 1. The maps to velocity from `noise` and from `score` divide
by t: singular at t = 0. (velocity -> x1 and velocity -> noise never divide.) Every dividing
function takes `eps`: the divisor t (or 1 - t) is replaced by max(t, eps) (or max(1 - t, eps)),
which changes nothing for t in [eps, 1 - eps]. The default eps = 1e-3 keeps a sampler that
evaluates the field at t = 0 or t = 1 finite, at the price of amplifying the network's error there
by up to 1 / eps. `eps=0` disables the clamp and then a time at the singular end raises
ValueError instead of returning inf or nan.

The singularity is real, not an artefact of the formulas: at t = 0 the exact noise prediction is
x itself and the exact score is -x, whatever the data, so no conversion can recover v_0 from them
(and likewise at t = 1 the exact x1-prediction is x). Near those ends the conversion is
ill-conditioned: a sampler that starts a noise- or score-model at t = 0 should rather start at
t = eps (`integrate(..., t_span=(eps, 1))`) or use a velocity or x1 model there.

All functions take x and the prediction of shape [B, ...] and t of shape [B] (one time per sample,
in [0, 1]), and return a tensor shaped like x.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

from ._checks import check_choice, check_time
from .paths import expand_time

__all__ = [
    "KINDS",
    "velocity_to_x1",
    "x1_to_velocity",
    "velocity_to_noise",
    "noise_to_velocity",
    "velocity_to_score",
    "score_to_velocity",
    "to_velocity",
    "from_velocity",
    "as_velocity",
    "velocity_as",
]

KINDS = ("velocity", "x1", "noise", "score")
DEFAULT_EPS = 1e-3


def _checked(value: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """t [B] viewed as [B, 1, ..., 1] in x's dtype, after checking shapes."""
    if value.shape != x.shape:
        raise ValueError(f"the prediction has shape {list(value.shape)}, expected {list(x.shape)} (same as x)")
    if x.ndim < 1:
        raise ValueError(f"x must be a batch of shape [B, ...], got {list(x.shape)}")
    check_time(t, x.shape[0])
    return expand_time(t.to(dtype=x.dtype, device=x.device), x)  # [B, 1, ...]


def _divisor(d: Tensor, eps: float, which: str) -> Tensor:
    """d (t or 1 - t, broadcast to [B, 1, ...]) clamped below at eps, or checked non-zero if eps = 0."""
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"eps must be in [0, 0.5), got {eps!r}")
    if eps == 0.0:
        if (d <= 0).any():
            end = "t = 0" if which == "t" else "t = 1"
            raise ValueError(
                f"this conversion divides by {which} and is singular at {end}; "
                f"pass eps > 0 to clamp, or times strictly inside (0, 1) (got {end})"
            )
        return d
    return d.clamp_min(eps)


def velocity_to_x1(v: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """E[x_1 | x_t = x] = x + (1 - t) v. Defined for every t in [0, 1]."""
    tb = _checked(v, x, t)  # [B, 1, ...]
    return x + (1 - tb) * v


def x1_to_velocity(x1_hat: Tensor, x: Tensor, t: Tensor, *, eps: float = DEFAULT_EPS) -> Tensor:
    """v = (x1_hat - x) / (1 - t). Singular at t = 1 (see the module docstring for `eps`)."""
    tb = _checked(x1_hat, x, t)  # [B, 1, ...]
    return (x1_hat - x) / _divisor(1 - tb, eps, "1 - t")


def velocity_to_noise(v: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """E[x_0 | x_t = x] = x - t v. Defined for every t in [0, 1]."""
    tb = _checked(v, x, t)  # [B, 1, ...]
    return x - tb * v


def noise_to_velocity(x0_hat: Tensor, x: Tensor, t: Tensor, *, eps: float = DEFAULT_EPS) -> Tensor:
    """v = (x - x0_hat) / t. Singular at t = 0 (see the module docstring for `eps`)."""
    tb = _checked(x0_hat, x, t)  # [B, 1, ...]
    return (x - x0_hat) / _divisor(tb, eps, "t")


def velocity_to_score(v: Tensor, x: Tensor, t: Tensor, *, eps: float = DEFAULT_EPS) -> Tensor:
    """∇ log p_t(x) = -(x - t v) / (1 - t). Singular at t = 1 (see the module docstring for `eps`)."""
    tb = _checked(v, x, t)  # [B, 1, ...]
    return -(x - tb * v) / _divisor(1 - tb, eps, "1 - t")


def score_to_velocity(score: Tensor, x: Tensor, t: Tensor, *, eps: float = DEFAULT_EPS) -> Tensor:
    """v = (x + (1 - t) score) / t. Singular at t = 0 (see the module docstring for `eps`)."""
    tb = _checked(score, x, t)  # [B, 1, ...]
    return (x + (1 - tb) * score) / _divisor(tb, eps, "t")


def _check_kind(kind: str) -> None:
    check_choice(kind, "parameterisation kind", KINDS)


def to_velocity(pred: Tensor, x: Tensor, t: Tensor, kind: str, *, eps: float = DEFAULT_EPS) -> Tensor:
    """Convert a prediction of the given `kind` (one of KINDS) at (x, t) into a velocity."""
    _check_kind(kind)
    if kind == "velocity":
        _checked(pred, x, t)
        return pred
    if kind == "x1":
        return x1_to_velocity(pred, x, t, eps=eps)
    if kind == "noise":
        return noise_to_velocity(pred, x, t, eps=eps)
    return score_to_velocity(pred, x, t, eps=eps)


def from_velocity(v: Tensor, x: Tensor, t: Tensor, kind: str, *, eps: float = DEFAULT_EPS) -> Tensor:
    """Convert a velocity at (x, t) into a prediction of the given `kind` (one of KINDS)."""
    _check_kind(kind)
    if kind == "velocity":
        _checked(v, x, t)
        return v
    if kind == "x1":
        return velocity_to_x1(v, x, t)
    if kind == "noise":
        return velocity_to_noise(v, x, t)
    return velocity_to_score(v, x, t, eps=eps)


class _Reparameterised:
    """model(x, t, ...) of one kind, seen as a callable of another kind."""

    def __init__(self, model: Callable[..., Tensor], kind: str, eps: float, direction: str):
        _check_kind(kind)
        if not 0.0 <= eps < 0.5:
            raise ValueError(f"eps must be in [0, 0.5), got {eps!r}")
        self.model, self.kind, self.eps, self.direction = model, kind, eps, direction

    def __call__(self, x: Tensor, t: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        pred = self.model(x, t, *args, **kwargs)  # [B, ...]
        if self.direction == "to":
            return to_velocity(pred, x, t, self.kind, eps=self.eps)
        return from_velocity(pred, x, t, self.kind, eps=self.eps)

    def __repr__(self) -> str:
        what = f"as_velocity(kind={self.kind!r}" if self.direction == "to" else f"velocity_as(kind={self.kind!r}"
        return f"{what}, eps={self.eps}, model={self.model!r})"


def as_velocity(model: Callable[..., Tensor], kind: str, *, eps: float = DEFAULT_EPS) -> Callable[..., Tensor]:
    """Wrap `model(x, t, ...)`, which predicts `kind` (x1, noise, score or velocity), as a velocity
    field v(x, t, ...) usable by `integrate`, `sample` and `likelihood.log_prob`.

    Extra arguments (e.g. class labels y) are passed through to the model. See the module
    docstring for the singular ends and `eps`.
    """
    return _Reparameterised(model, kind, eps, "to")


def velocity_as(v: Callable[..., Tensor], kind: str, *, eps: float = DEFAULT_EPS) -> Callable[..., Tensor]:
    """The reverse of `as_velocity`: a velocity field v(x, t, ...) seen as a `kind` predictor."""
    return _Reparameterised(v, kind, eps, "from")
