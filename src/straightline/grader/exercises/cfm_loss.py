"""Chapter 4: `cfm_loss` and the bonus `weighted_cfm_loss`.

The learner's function draws its own times t (random), so the tests do not predict them: the probe
model records the t it receives, and the expected loss is the toolkit's `cfm_loss` evaluated with
exactly those times (a fixed `t_sampler`), the noise the grader's noise_fn handed out, and the
probe field in float64. Everything else the learner controls is checked against that: the shape of
t and of x_t, t in [0, 1] and different per example and per call, x_t built from the grader's
noise, the value, the scalar shape and the gradient of the loss. When the value is wrong, the
classic mistakes are recomputed and recognised by name (summed, reversed target, weight on the
target, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

import straightline
from straightline.timesteps import inverse_one_minus_t

from ..inside.probes import velocity
from ..protocol import CallRecord
from .base import Arg, Call, Case, CheckCall, Exercise, close, explain_error, first_problem, fmt, shape_str

__all__ = ["CFM_LOSS", "WEIGHTED_CFM_LOSS"]

DEFAULT_EPS = 1e-2

BROADCAST_HINT = (
    "This usually means t and x_1 do not broadcast: give t the shape [B, 1, ..., 1], with one "
    "singleton dimension per data dimension, computed from x_1.dim() so the same code works for "
    "[B, D] and [B, C, H, W] data."
)
ERROR_HINTS = {
    "must match the size of tensor": BROADCAST_HINT,
    "The size of tensor a": BROADCAST_HINT,
    "noise_fn was called with a tensor of shape": "",
}


# ------------------------------------------------------------------------------------------------
# what the learner sees

CFM_STARTER = '''import torch


def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    """Conditional flow-matching loss for a batch of data x_1 of shape [B, ...].

    1. x_0 = noise_fn(x_1): noise shaped like the data, drawn on every call
    2. one time per example, t ~ U(0, 1): shape [B], viewed as [B, 1, ..., 1] to broadcast
    3. the blend x_t = (1 - t) x_0 + t x_1, noise at t = 0 and data at t = 1
    4. target = x_1 - x_0
    5. prediction = model(x_t, t), with t of shape [B]
    6. return the mean squared error over every element (a scalar tensor)
    """
    raise NotImplementedError("write cfm_loss here")
'''

CFM_EXAMPLE = '''import torch

class Constant(torch.nn.Module):
    """A 'model' that predicts [[0.8, 1.9]] whatever it is given."""
    def forward(self, x, t):
        return torch.tensor([[0.8, 1.9]])

x_1 = torch.tensor([[1.0, 2.0]])
loss = cfm_loss(Constant(), x_1, noise_fn=torch.zeros_like)
print(loss)  # tensor(0.0250) for every t: the noise is zero, so the target is [[1, 2]]
'''

CFM_HINTS = (
    "Follow the six steps in order: noise, time, blend, target, prediction, mean squared error. "
    "Both random draws (the noise and the times) happen inside the function, on every call.",
    "The time needs one value per example, shape [B]. To multiply it with x_1 it must look like "
    "[B, 1, ..., 1]: `t.view(-1, *([1] * (x_1.dim() - 1)))` builds that for any number of data "
    "dimensions. Give the model the flat [B] version.",
    "x_0 = noise_fn(x_1); t = torch.rand(x_1.shape[0]); tb = (t viewed as [B, 1, ..., 1]); "
    "x_t = (1 - tb) * x_0 + tb * x_1; then compare model(x_t, t) with x_1 - x_0 using the mean of "
    "the squared differences.",
)

WEIGHTED_STARTER = '''import torch


def weighted_cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like, eps=1e-2):
    """The CFM loss with the time weight w(t) = 1 / (1 - t + eps).

    Build x_0, t, x_t and the target exactly as in cfm_loss (one time per example). Then:
    1. each example's own loss: the mean squared error over its non-batch dimensions, shape [B]
    2. multiply it by w(t) for that example's time
    3. return the mean of the B weighted losses (a scalar tensor)
    """
    raise NotImplementedError("write weighted_cfm_loss here")
'''

WEIGHTED_EXAMPLE = '''import torch

class Constant(torch.nn.Module):
    """Predicts [[0.8, 1.9]] whatever it is given, and remembers the time it saw."""
    def forward(self, x, t):
        self.t = t
        return torch.tensor([[0.8, 1.9]])

model = Constant()
x_1 = torch.tensor([[1.0, 2.0]])
loss = weighted_cfm_loss(model, x_1, noise_fn=torch.zeros_like)
print(loss, 0.025 / (1 - model.t + 1e-2))  # the two agree; about 0.0352 when t = 0.3
'''

WEIGHTED_HINTS = (
    "Start from your cfm_loss: the noise, the times, the blend and the target are the same. Only "
    "the final reduction changes: one loss per example first, then the weights, then the mean.",
    "`((pred - target) ** 2).flatten(1).mean(dim=1)` is each example's mean squared error, shape "
    "[B]. The weight multiplies this per-example loss; it does not touch the target or the "
    "prediction.",
    "w = 1 / (1 - t + eps) with t of shape [B] (the flat times); return (w * per_example).mean().",
)


# ------------------------------------------------------------------------------------------------
# test cases

def _affine(a: float, b: float, c: float, d: float) -> dict[str, Any]:
    return {"kind": "affine", "a": a, "b": b, "c": c, "d": d}


def _draw(shape: tuple[int, ...], gen: torch.Generator, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    return torch.randn(shape, generator=gen) * scale + shift


def _call(model: dict[str, Any], x_1: Tensor, noise: Tensor | None, eps: float | None) -> Call:
    params: dict[str, Arg] = {"model": Arg.model(model), "x_1": Arg.data(x_1)}
    if noise is not None:
        params["noise_fn"] = Arg.noise(noise)
    if eps is not None:
        params["eps"] = Arg.number(eps)
    return Call(params=params, positional=("model", "x_1"))


def _example_case() -> Case:
    return Case(
        id="example",
        name="the worked example: x_1 = [[1, 2]], zero noise, prediction [[0.8, 1.9]]",
        visible=True,
        calls=(
            _call(
                {"kind": "constant", "shape": [1, 2], "values": [0.8, 1.9]},
                torch.tensor([[1.0, 2.0]]),
                torch.zeros(1, 2),
                None,
            ),
        ),
        seed=1,
    )


def _hidden_case(
    case_id: str, name: str, model: dict[str, Any], x_1: Tensor, gen: torch.Generator, seed: int,
    eps: float | None = None,
) -> Case:
    """A hidden case of one call on the batch x_1, with its noise drawn from `gen`."""
    return Case(id=case_id, name=name, visible=False, calls=(_call(model, x_1, _draw(x_1.shape, gen), eps),), seed=seed)


def _fresh_each_call_case(x_1: Tensor, gen: torch.Generator) -> Case:
    model = _affine(0.5, 1.0, 0.0, -0.7)
    return Case(
        id="fresh-each-call",
        name="two calls on the same batch: fresh noise and fresh times each call",
        visible=False,
        calls=(_call(model, x_1, _draw(x_1.shape, gen), None), _call(model, x_1, _draw(x_1.shape, gen), None)),
        seed=4,
    )


def _custom_eps_case(gen: torch.Generator) -> Case:
    """The weighted loss's case with eps given; draws its batch, then its noise, from `gen`."""
    x_eps = _draw((6, 2), gen, 1.0, 0.0)
    return _hidden_case("custom-eps", "eps passed explicitly (eps=0.05)", _affine(0.3, -0.5, 0.2, 0.8),
                        x_eps, gen, 6, eps=0.05)


def _default_noise_case(x_1: Tensor) -> Case:
    return Case(
        id="default-noise",
        name="called without noise_fn: the default torch.randn_like",
        visible=False,
        calls=(_call(_affine(0.9, 0.2, -0.4, 0.6), x_1, None, None),),
        seed=7,
    )


def _cases(weighted: bool) -> tuple[Case, ...]:
    """The cases in order. One seeded generator draws, in this order, all batches, then each
    hidden case's noise (so the hidden data stay the same from version to version)."""
    gen = torch.Generator().manual_seed(20240 + int(weighted))
    x2 = _draw((6, 3), gen, 1.5, 0.5)
    x4 = _draw((5, 2, 3, 4), gen, 1.2, -0.3)
    x_fresh = _draw((4, 3), gen, 1.0, 1.0)
    x_square = _draw((4, 4), gen, 1.3, 0.2)
    x_default = _draw((32, 2), gen, 1.0, 0.5)
    cases = [
        _example_case(),
        _hidden_case("batch-2d", "a batch of 2-D points [B, D]", _affine(0.7, -1.3, 0.25, 0.9), x2, gen, 2),
        _hidden_case("images-4d", "a batch of images [B, C, H, W]", _affine(-0.4, 0.8, -0.1, 1.1), x4, gen, 3),
        _fresh_each_call_case(x_fresh, gen),
        _hidden_case("square-batch", "a batch whose size equals the data dimension [4, 4]",
                     _affine(1.1, 0.6, 0.3, 0.4), x_square, gen, 5),
    ]
    if weighted:
        cases.append(_custom_eps_case(gen))
    cases.append(_default_noise_case(x_default))
    return tuple(cases)


# ------------------------------------------------------------------------------------------------
# checks

class _FixedTimes:
    """A `TimeSampler` that returns the times the learner's code drew (so the toolkit's cfm_loss
    evaluates exactly the learner's draw)."""

    def __init__(self, t: Tensor):
        self.t = t

    def __call__(self, n: int, *, device=None, generator=None) -> Tensor:
        assert n == self.t.shape[0]
        return self.t

    def density(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)


def _reference(spec: dict[str, Any], x_1: Tensor, z: Tensor, t: Tensor, eps: float | None) -> Tensor:
    """The toolkit's cfm_loss with the learner's times: the expected value (float64)."""
    return straightline.cfm_loss(
        lambda x, tt: velocity(spec, x, tt),
        x_1,
        noise_fn=lambda _: z,
        t_sampler=_FixedTimes(t),
        weight=None if eps is None else inverse_one_minus_t(eps),
    )


def _batch_view(t: Tensor, like: Tensor) -> Tensor:
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1)))


def _diagnose_x_t(got: Tensor, x_1: Tensor, z: Tensor, t: Tensor, earlier_noise: list[Tensor]) -> str:
    tb = _batch_view(t, x_1)
    if close(got, tb * z + (1 - tb) * x_1):
        return (
            "Your x_t runs the wrong way: at t = 0 the model's input must be the noise x_0 and at "
            "t = 1 the data x_1. Check which of the two gets the factor t."
        )
    if close(got, tb * x_1):
        return (
            "The model's input contains no noise (it equals t * x_1, as if x_0 were zero): draw "
            "x_0 with noise_fn(x_1) and blend it in."
        )
    for z_old in earlier_noise:
        if close(got, (1 - tb) * z_old + tb * x_1):
            return (
                "The model's input in this call was built from the noise of an earlier call: draw "
                "fresh noise with noise_fn(x_1) on every call, never keep it between calls."
            )
    if close(got, x_1):
        return "The model received the data x_1 itself; it should receive the blend x_t = (1 - t) x_0 + t x_1."
    if close(got, z):
        return "The model received the noise x_0 itself; it should receive the blend x_t = (1 - t) x_0 + t x_1."
    if x_1.shape[-1] == t.shape[0]:
        tl = t.reshape(*([1] * (x_1.ndim - 1)), t.shape[0])
        if close(got, (1 - tl) * z + tl * x_1):
            return (
                "Your times line up with the last data dimension instead of the batch: a tensor of "
                "shape [B] broadcasts against the *last* dimension of x_1 (here both are "
                f"{t.shape[0]}, so no error was raised). View t as [B, 1, ..., 1] before blending."
            )
    diff = (got - (1 - tb) * z - tb * x_1).abs().flatten(1).amax(dim=1)
    k = int(diff.argmax())
    return (
        "The model's input x_t does not match (1 - t) x_0 + t x_1 for the times t it received "
        f"(largest difference {fmt(float(diff[k]))}, in example {k} of the batch). Use x_0 from "
        "noise_fn(x_1), and the same t for the blend and for the model."
    )


@dataclass(frozen=True)
class _Blend:
    """What the expected loss is made of, for the learner's times: x_t, v = model(x_t, t), u = x_1 - x_0."""

    x_1: Tensor
    z: Tensor  # x_0, shaped like x_1
    t: Tensor  # [B]
    x_t: Tensor
    v: Tensor
    u: Tensor

    @property
    def err2(self) -> Tensor:
        return (self.v - self.u) ** 2

    @property
    def per(self) -> Tensor:
        """[B] each example's mean squared error."""
        return self.err2.flatten(1).mean(1)


def _loss_candidates(
    spec: dict[str, Any], x_1: Tensor, z: Tensor, t: Tensor, eps: float | None, called_eps: float | None
) -> list[tuple[Tensor, str]]:
    """Classic wrong losses, each with what to say when the learner's value matches it."""
    tb = _batch_view(t, x_1)
    x_t = (1 - tb) * z + tb * x_1
    b = _Blend(x_1, z, t, x_t, velocity(spec, x_t, t), x_1 - z)
    if eps is None:
        return _plain_mistakes(b)
    w = 1.0 / (1.0 - t + eps)  # [B]
    out = _weight_mistakes(b, w, eps) + _reduction_mistakes(b, w)
    if called_eps is not None and called_eps != DEFAULT_EPS:
        out.append(
            (
                (b.per / (1 - t + DEFAULT_EPS)).mean(),
                f"Your function ignored the eps it was given: it was called with eps={called_eps} but used {DEFAULT_EPS}.",
            )
        )
    out.append(((b.per / (1 - t).clamp_min(1e-12)).mean(), "The weight is missing eps: w(t) = 1 / (1 - t + eps)."))
    return out


def _plain_mistakes(b: _Blend) -> list[tuple[Tensor, str]]:
    """Wrong unweighted losses: reductions, targets, error measures."""
    v, u, z, x_1, x_t, err2 = b.v, b.u, b.z, b.x_1, b.x_t, b.err2
    return [
        (err2.sum(), "It looks summed over every element instead of averaged: use the mean."),
        (
            err2.flatten(1).sum(1).mean(),
            "It looks summed over the data dimensions and averaged over the batch: average over "
            "every element (batch and data dimensions alike).",
        ),
        (
            err2.flatten(1).mean(1).sum(),
            "It looks averaged within each example but summed over the batch: average over the batch too.",
        ),
        (
            ((v - (z - x_1)) ** 2).mean(),
            "Your target points the wrong way: the velocity that carries the noise x_0 (t = 0) to the "
            "data x_1 (t = 1) is x_1 - x_0, not x_0 - x_1.",
        ),
        (((v - x_1) ** 2).mean(), "The target is the difference x_1 - x_0, not x_1 alone."),
        (((v - x_t) ** 2).mean(), "The target is the velocity x_1 - x_0, not the point x_t."),
        ((v - u).abs().mean(), "That is the mean absolute error: square the differences."),
        (err2.mean().sqrt(), "That is the square root of the mean squared error: return the mean squared error itself."),
        (0.5 * err2.mean(), "It is half the mean squared error: drop the factor 1/2."),
    ]


def _weight_mistakes(b: _Blend, w: Tensor, eps: float) -> list[tuple[Tensor, str]]:
    """Wrong weighted losses: the weight missing, misplaced, squared, inverted."""
    v, u, t, err2, per = b.v, b.u, b.t, b.err2, b.per
    wb = _batch_view(w, b.x_1)
    return [
        (
            err2.mean(),
            "It equals the unweighted loss: multiply each example's loss by w(t) = 1 / (1 - t + eps) before averaging.",
        ),
        (
            ((v - wb * u) ** 2).flatten(1).mean(1).mean(),
            "The weight was applied to the target. It multiplies each example's loss (after squaring "
            "and averaging over the data dimensions), not the target.",
        ),
        (
            ((wb * v - u) ** 2).flatten(1).mean(1).mean(),
            "The weight was applied to the prediction. It multiplies each example's loss, after squaring.",
        ),
        (
            (w**2 * per).mean(),
            "The weight ended up squared: it was applied to the error before squaring. Multiply the "
            "squared (per-example) loss by w(t).",
        ),
        (
            ((1 - t + eps) * per).mean(),
            "You multiplied by 1 - t + eps; the weight is its reciprocal, 1 / (1 - t + eps), which grows towards t = 1.",
        ),
        (
            (per / (t + eps)).mean(),
            "Your weight grows towards t = 0 (the noise end); w(t) = 1 / (1 - t + eps) grows towards t = 1 (the data end).",
        ),
    ]


def _reduction_mistakes(b: _Blend, w: Tensor) -> list[tuple[Tensor, str]]:
    """Wrong weighted losses: the wrong sums and means, the target reversed."""
    v, z, x_1, err2, per = b.v, b.z, b.x_1, b.err2, b.per
    return [
        (
            (w * per).sum(),
            "The weighted per-example losses are summed over the batch: return their mean.",
        ),
        (
            (w * err2.flatten(1).sum(1)).mean(),
            "Each example's loss is summed over its data dimensions: average over them (mean squared error per example).",
        ),
        (
            (w * err2.sum()).mean(),
            "It looks like the weights multiply the loss summed over the whole batch: take each example's own mean squared error first.",
        ),
        (
            (w * ((v - (z - x_1)) ** 2).flatten(1).mean(1)).mean(),
            "Your target points the wrong way: the velocity from noise x_0 (t = 0) to data x_1 (t = 1) is x_1 - x_0.",
        ),
        (
            (w.mean() * err2.mean()),
            "The mean weight multiplies the mean loss: each example's loss must be multiplied by its own weight before averaging.",
        ),
    ]


def _check_noise_default(got_x_t: Tensor, x_1: Tensor, t: Tensor) -> tuple[Tensor | None, str | None]:
    """With the default noise_fn: recover x_0 from x_t (where possible) and check it looks like N(0, 1)."""
    tb = _batch_view(t, x_1)
    if float((1 - t).min()) < 1e-2:
        return None, None  # an example drawn at t ~ 1 carries (almost) no noise; skip the value check
    z = (got_x_t - tb * x_1) / (1 - tb)
    std, mean = float(z.std()), float(z.mean())
    if not (0.6 < std < 1.5 and abs(mean) < 0.6):
        return None, (
            "Called without noise_fn, your function should draw standard normal noise (the default "
            f"noise_fn is torch.randn_like); the noise in its x_t has mean {fmt(mean)} and standard "
            f"deviation {fmt(std)}."
        )
    return z, None


@dataclass
class _LossCall:
    """One call of the learner's loss and what the checks find out about it, in table order."""

    case: Case
    i: int
    records: tuple[CallRecord, ...]
    weighted: bool
    function: str
    t: Tensor | None = None  # [B]: the times the model received (once readable)
    x_t: Tensor | None = None  # shaped like x_1: what the model received as x_t
    z: Tensor | None = None  # shaped like x_1: the noise in x_t, where it can be known

    @property
    def call(self) -> Call:
        return self.case.calls[self.i]

    @property
    def rec(self) -> CallRecord:
        return self.records[self.i]

    @property
    def x_1(self) -> Tensor:
        return self.call.tensor("x_1")

    @property
    def batch(self) -> int:
        return self.x_1.shape[0]

    @property
    def has_noise(self) -> bool:
        return "noise_fn" in self.call.params

    @property
    def called_eps(self) -> Any:
        return self.call.params["eps"].value if "eps" in self.call.params else None

    @property
    def eps(self) -> float | None:
        if not self.weighted:
            return None
        return float(self.called_eps) if self.called_eps is not None else DEFAULT_EPS

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.call.params["model"].spec or {})


def _no_error(c: _LossCall) -> str | None:
    return explain_error(c.rec.error, function=c.function, hints=ERROR_HINTS) if c.rec.error is not None else None


def _model_called_once(c: _LossCall) -> str | None:
    calls = len(c.rec.model_calls)
    if calls == 0:
        return f"{c.function} never called the model: the prediction is model(x_t, t)."
    if calls > 1:
        return f"{c.function} called the model {calls} times for one batch; call it once, on x_t with the batch's times."
    return None


def _noise_fn_called_once(c: _LossCall) -> str | None:
    if not c.has_noise:
        return None
    if not c.rec.noise_calls and c.i > 0:
        return (
            "Your function did not call noise_fn this time: draw new noise with "
            "noise_fn(x_1) on every call, never keep it from an earlier call."
        )
    if not c.rec.noise_calls:
        return (
            "Your function never called noise_fn. Draw the noise with x_0 = noise_fn(x_1): "
            "the tests pass their own noise_fn (torch.randn_like is only the default) and "
            "check that x_t is built from what it returns."
        )
    if len(c.rec.noise_calls) > 1:
        return f"Your function called noise_fn {len(c.rec.noise_calls)} times; draw the noise once per call."
    return None


def _x_t_shaped_like_data(c: _LossCall) -> str | None:
    x = c.rec.model_calls[0].x
    if x.type != "tensor":
        return f"The model received x_t as {x.type}, not as a tensor."
    if x.shape == tuple(c.x_1.shape):
        return None
    message = (
        f"The model received x_t of shape {shape_str(x.shape)}, but x_1 has shape "
        f"{shape_str(c.x_1.shape)}: x_t must have the shape of the data."
    )
    if x.shape is not None and len(x.shape) > c.x_1.ndim:
        message += (
            " This happens when t has more dimensions than the data (for example [B, 1, 1, 1] "
            f"against {c.x_1.ndim}-D data): give t one singleton dimension per data dimension, "
            "computed from x_1.dim(), so the same code works for [B, D] and [B, C, H, W]."
        )
    return message


def _t_is_a_tensor(c: _LossCall) -> str | None:
    t = c.rec.model_calls[0].t
    if t.type == "number":
        return f"The model received t as a Python number; pass a tensor of shape [B] = [{c.batch}], one time per example."
    if t.type != "tensor":
        return f"The model received t as {t.type}; pass a tensor of shape [B] = [{c.batch}]."
    return None


def _t_has_shape_b(c: _LossCall) -> str | None:
    shape, batch = c.rec.model_calls[0].t.shape, c.batch
    if shape == (batch,):
        return None
    if shape == ():
        return (
            "The model received t as a single number (shape []); pass one time per example, "
            f"a tensor of shape [B] = [{batch}]."
        )
    if math.prod(shape or ()) == batch:
        return (
            f"The model received t of shape {shape_str(shape)}; it takes t of shape "
            f"[B] = [{batch}]. Keep the [B, 1, ..., 1] view for the blend and pass the flat "
            "times (e.g. t.view(-1)) to the model."
        )
    return f"The model received t of shape {shape_str(shape)}; it takes t of shape [B] = [{batch}]."


def _inputs_readable(c: _LossCall) -> str | None:
    received = c.rec.model_calls[0]
    if received.t.values is None or received.x.values is None:
        return "The model received tensors too large to check; pass x_t and t of the batch's size."
    c.t, c.x_t = received.t.values, received.x.values.reshape(c.x_1.shape)
    return None


def _t_in_unit_interval(c: _LossCall) -> str | None:
    t = c.t
    assert t is not None
    if bool(torch.isfinite(t).all()) and float(t.min()) >= 0 and float(t.max()) <= 1:
        return None
    return (
        f"The times must be drawn from U(0, 1); the model received t from {fmt(float(t.min()))} "
        f"to {fmt(float(t.max()))}. torch.rand draws uniformly from [0, 1) (torch.randn is a "
        "normal distribution)."
    )


def _t_per_example(c: _LossCall) -> str | None:
    t = c.t
    assert t is not None
    if c.batch >= 4 and float(t.max() - t.min()) < 1e-7:
        return (
            f"Every example in the batch got the same time t = {fmt(float(t[0]))}: draw one time per "
            f"example, a tensor of B = {c.batch} values (e.g. torch.rand(B)), not one number for the batch."
        )
    return None


def _t_fresh_per_call(c: _LossCall) -> str | None:
    earlier = c.records[c.i - 1] if c.i > 0 else None
    previous = earlier.model_calls[0].t.values if earlier is not None and earlier.model_calls else None
    assert c.t is not None
    if previous is not None and previous.shape == c.t.shape and close(c.t, previous, rtol=0, atol=1e-7):
        return (
            "Both calls drew the same times: draw fresh times on every call (seeding torch "
            "inside your function, e.g. with torch.manual_seed, makes every call identical)."
        )
    return None


def _x_t_blends_noise_and_data(c: _LossCall) -> str | None:
    assert c.t is not None and c.x_t is not None
    if not c.has_noise:
        c.z, problem = _check_noise_default(c.x_t, c.x_1, c.t)
        return problem
    c.z = c.call.tensor("noise_fn")
    tb = _batch_view(c.t, c.x_1)
    if close(c.x_t, (1 - tb) * c.z + tb * c.x_1):
        return None
    earlier = [c.case.calls[j].tensor("noise_fn") for j in range(c.i)]
    return _diagnose_x_t(c.x_t, c.x_1, c.z, c.t, earlier)


def _loss_is_a_tensor(c: _LossCall) -> str | None:
    out = c.rec.output
    assert out is not None
    if out.kind == "number":
        return (
            "Your function returned a Python number; return the loss as a tensor (it must carry "
            "gradients to train the model, and .item() cuts them)."
        )
    if out.kind == "unreadable":
        return "The object your function returned could not be read as a tensor; return a scalar tensor."
    if out.kind != "tensor":
        return f"Your function returned a {out.type_name}; return the loss as a scalar tensor."
    return None


def _loss_is_a_scalar(c: _LossCall) -> str | None:
    shape = c.rec.output.shape
    if shape == ():
        return None
    if shape == (c.batch,):
        return (
            f"Your loss has shape [B] = [{c.batch}], one value per example: return a single "
            "number, the mean over " + ("the B weighted losses." if c.weighted else "every element.")
        )
    if shape == tuple(c.x_1.shape):
        return "Your loss has the shape of the data: after squaring, average over every element to get a scalar."
    if shape is not None and all(n == 1 for n in shape):
        return f"Your loss has shape {shape_str(shape)}; return a 0-dimensional tensor (what .mean() gives)."
    return f"Your loss has shape {shape_str(shape)}; it should be a scalar (shape [])."


def _loss_is_finite(c: _LossCall) -> str | None:
    values = c.rec.output.values
    if values is None:
        return "Your loss could not be read."
    if not bool(torch.isfinite(values.reshape(()))):
        return f"Your loss is {fmt(float(values.reshape(())))}, not a finite number."
    return None


def _loss_value(c: _LossCall) -> str | None:
    got = c.rec.output.values.reshape(())
    if c.z is None:  # default noise with an example at t ~ 1: value not checkable, the rest is
        return None
    assert c.t is not None
    want = _reference(c.spec, c.x_1, c.z, c.t, c.eps)
    rtol = 1e-4 if c.has_noise else 1e-3
    if close(got, want, rtol=rtol):
        return None
    for candidate, message in _loss_candidates(c.spec, c.x_1, c.z, c.t, c.eps, c.called_eps):
        if close(got, candidate, rtol=rtol) and not close(candidate, want, rtol=rtol):
            return f"Your loss is {fmt(float(got))}; for the times your function drew it should be {fmt(float(want))}. {message}"
    ratio = float(got / want) if float(want) != 0 else float("inf")
    per_example = "each example's weighted loss" if c.weighted else "the squared error"
    return (
        f"Your loss is {fmt(float(got))}; for the times your function drew it should be "
        f"{fmt(float(want))} ({fmt(ratio)} times that). Check the target (x_1 - x_0) and "
        f"{per_example}, averaged as the prompt says."
    )


def _loss_carries_gradients(c: _LossCall) -> str | None:
    return None if c.rec.output.requires_grad else _detached_message()


#: The checks of one call, in the order a learner meets the problems.
LOSS_CHECKS = (
    _no_error,
    _model_called_once,
    _noise_fn_called_once,
    _x_t_shaped_like_data,
    _t_is_a_tensor,
    _t_has_shape_b,
    _inputs_readable,
    _t_in_unit_interval,
    _t_per_example,
    _t_fresh_per_call,
    _x_t_blends_noise_and_data,
    _loss_is_a_tensor,
    _loss_is_a_scalar,
    _loss_is_finite,
    _loss_value,
    _loss_carries_gradients,
)


def _make_check(weighted: bool, function: str) -> CheckCall:
    def check(case: Case, i: int, records: tuple[CallRecord, ...]) -> str | None:
        return first_problem(LOSS_CHECKS, _LossCall(case, i, records, weighted, function))

    return check


def _detached_message() -> str:
    return (
        "Your loss has the right value but no gradient reaches the model: compute it with tensor "
        "operations on the model's output (no .item(), torch.tensor(...), .detach() or torch.no_grad())."
    )


CFM_LOSS = Exercise(
    name="cfm_loss",
    title="The conditional flow-matching loss",
    function="cfm_loss",
    element_id="c4-build-cfm-loss",
    signature="cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like)",
    starter_code=CFM_STARTER,
    example_code=CFM_EXAMPLE,
    hints=CFM_HINTS,
    reference="straightline.cfm_loss",
    build_cases=lambda: _cases(weighted=False),
    check_call=_make_check(weighted=False, function="cfm_loss"),
)

WEIGHTED_CFM_LOSS = Exercise(
    name="weighted_cfm_loss",
    title="The time-weighted CFM loss, w(t) = 1 / (1 - t + eps)",
    function="weighted_cfm_loss",
    element_id="c4-build-weighted-loss",
    signature="weighted_cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like, eps=1e-2)",
    starter_code=WEIGHTED_STARTER,
    example_code=WEIGHTED_EXAMPLE,
    hints=WEIGHTED_HINTS,
    reference="straightline.cfm_loss(..., weight=straightline.timesteps.inverse_one_minus_t(eps))",
    build_cases=lambda: _cases(weighted=True),
    check_call=_make_check(weighted=True, function="weighted_cfm_loss"),
)
