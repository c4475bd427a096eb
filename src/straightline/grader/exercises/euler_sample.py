"""Chapter 5: `euler_sample(model, x_0, steps)`.

Deterministic, so the expected result is simply the toolkit's `integrate(..., method="euler")` on
the same probe field in float64. The probe model's records show the time grid the learner's loop
used, so an off-by-one grid, a linspace with N points, a scalar t or too many evaluations are
named before the final value is compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

import straightline

from ..inside.probes import velocity
from ..protocol import CallRecord
from .base import Arg, Call, Case, Exercise, close, explain_error, first_problem, fmt, shape_str

__all__ = ["EULER_SAMPLE"]

STARTER = '''import torch


def euler_sample(model, x_0, steps):
    """Integrate dx/dt = model(x, t) from t = 0 to t = 1 with `steps` equal Euler steps.

    x_0 has shape [B, ...]; model(x, t) returns a velocity shaped like x and takes t of shape [B]
    (one equal value per particle). With h = 1 / steps, for k = 0, ..., steps - 1:
        t_k = k / steps,   x <- x + h * model(x, t_k)
    Return x after the last step.
    """
    raise NotImplementedError("write euler_sample here")
'''

EXAMPLE = '''import torch

x_0 = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])

# 1. a constant field is integrated exactly: x_0 + 0.5
print(euler_sample(lambda x, t: torch.full_like(x, 0.5), x_0, 4))

# 2. v(x, t) = 2t: four steps with left-end times give x_0 + 0.75 (x_0 + 1.25 means one step late)
print(euler_sample(lambda x, t: 2 * t[:, None] * torch.ones_like(x), x_0, 4))
'''

HINTS = (
    "Start with x = x_0 and h = 1 / steps, and loop steps times; each step moves x by h times the "
    "velocity the model gives at the current point and time.",
    "At step k the time is k / steps, the left end of the step: the first evaluation is at t = 0 "
    "and none happens at t = 1. The model wants t of shape [B]: "
    "torch.full((x.shape[0],), k / steps) builds it.",
    "for k in range(steps): t = torch.full((x.shape[0],), k * h, dtype=x.dtype); "
    "x = x + h * model(x, t) ... and return x after the loop.",
)

ERROR_HINTS = {
    "must match the size of tensor": "Check the shape of t: the model takes t of shape [B], one value per particle.",
}


def _affine(a: float, b: float, c: float, d: float) -> dict[str, Any]:
    return {"kind": "affine", "a": a, "b": b, "c": c, "d": d}


def _call(spec: dict[str, Any], x_0: Tensor, steps: int) -> Call:
    return Call(
        params={"model": Arg.model(spec), "x_0": Arg.data(x_0), "steps": Arg.integer(steps)},
        positional=("model", "x_0", "steps"),
    )


def _cases() -> tuple[Case, ...]:
    gen = torch.Generator().manual_seed(5050)
    x_example = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    return (
        Case(
            id="constant-field",
            name="a constant field v = 0.5, 4 steps: x_0 + 0.5",
            visible=True,
            calls=(_call(_affine(0.0, 0.0, 0.5, 0.0), x_example, 4),),
        ),
        Case(
            id="time-field",
            name="v(x, t) = 2t, 4 steps: x_0 + 0.75",
            visible=True,
            calls=(_call(_affine(0.0, 2.0, 0.0, 0.0), x_example, 4),),
        ),
        Case(
            id="linear-field",
            name="v(x, t) = x with 2 and with 4 steps",
            visible=False,
            calls=(
                _call(_affine(1.0, 0.0, 0.0, 0.0), torch.randn(5, 3, generator=gen), 2),
                _call(_affine(1.0, 0.0, 0.0, 0.0), torch.randn(5, 3, generator=gen), 4),
            ),
        ),
        Case(
            id="images-4d",
            name="a batch of images [B, C, H, W], 5 steps",
            visible=False,
            calls=(_call(_affine(-0.6, 1.5, 0.2, 0.8), torch.randn(2, 1, 3, 3, generator=gen), 5),),
        ),
        Case(
            id="one-step",
            name="a single step",
            visible=False,
            calls=(_call(_affine(0.7, -1.0, 0.3, 0.5), torch.randn(4, 2, generator=gen), 1),),
        ),
        Case(
            id="many-steps",
            name="50 steps on a field that depends on x and t",
            visible=False,
            calls=(_call(_affine(-1.2, 0.9, 0.1, 1.3), torch.randn(6, 2, generator=gen), 50),),
        ),
    )


def _euler(spec: dict[str, Any], x_0: Tensor, ts: list[float], h: float) -> Tensor:
    x = x_0
    for tk in ts:
        x = x + h * velocity(spec, x, torch.full((x.shape[0],), tk, dtype=x.dtype))
    return x


@dataclass
class _SampleCall:
    """One call of the learner's sampler and what the checks find out about it, in table order."""

    case: Case
    i: int
    records: tuple[CallRecord, ...]
    times: list[float] = field(default_factory=list)  # the time of each model call, once checked

    @property
    def rec(self) -> CallRecord:
        return self.records[self.i]

    @property
    def x_0(self) -> Tensor:
        return self.case.calls[self.i].tensor("x_0")

    @property
    def steps(self) -> int:
        return int(self.case.calls[self.i].params["steps"].value or 0)

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.case.calls[self.i].params["model"].spec or {})

    @property
    def where(self) -> str:
        return f"(steps = {self.steps})"


def _no_error(c: _SampleCall) -> str | None:
    return explain_error(c.rec.error, function="euler_sample", hints=ERROR_HINTS) if c.rec.error is not None else None


def _one_model_call_per_step(c: _SampleCall) -> str | None:
    n_calls, steps = len(c.rec.model_calls), c.steps
    if n_calls == 0:
        return "euler_sample never called the model: each step evaluates the velocity model(x, t)."
    if n_calls == steps:
        return None
    message = f"euler_sample called the model {n_calls} times {c.where}; {steps} Euler steps evaluate it exactly {steps} times."
    if n_calls == steps + 1:
        message += " There is no evaluation at t = 1: the times are t_k = k / steps for k = 0, ..., steps - 1."
    return message


def _step_inputs(c: _SampleCall, k: int) -> str | None:
    """The problem with what the model received at step k, or None (and its time noted)."""
    received, batch = c.rec.model_calls[k], c.x_0.shape[0]
    t_rec = received.t
    if t_rec.type == "number":
        return (
            f"At step {k} the model received t as a Python number; pass a tensor of shape "
            f"[B] = [{batch}], the same time for every particle."
        )
    if t_rec.type != "tensor" or t_rec.shape != (batch,):
        got = shape_str(t_rec.shape) if t_rec.type == "tensor" else t_rec.type
        return (
            f"At step {k} the model received t of shape {got}; it takes t of shape [B] = [{batch}], "
            f"one (equal) value per particle, e.g. torch.full((B,), t_k)."
        )
    if received.x.type != "tensor" or received.x.shape != tuple(c.x_0.shape):
        return (
            f"At step {k} the model received x of shape {shape_str(received.x.shape)}; the particles "
            f"have shape {shape_str(c.x_0.shape)}."
        )
    if t_rec.values is None:
        return "The model received a time tensor too large to check."
    if float(t_rec.values.max() - t_rec.values.min()) > 1e-6:
        return f"At step {k} the particles received different times; they all share the time t_k."
    c.times.append(float(t_rec.values[0]))
    return None


def _steps_take_shared_tensor_times(c: _SampleCall) -> str | None:
    for k in range(len(c.rec.model_calls)):
        message = _step_inputs(c, k)
        if message is not None:
            return message
    return None


def _time_grid(c: _SampleCall) -> str | None:
    steps, where = c.steps, c.where
    grid = torch.tensor(c.times, dtype=torch.float64)
    want = torch.arange(steps, dtype=torch.float64) / steps
    if close(grid, want, rtol=0, atol=1e-6):
        return None
    if close(grid, want + 1.0 / steps, rtol=0, atol=1e-6):
        return (
            f"Your times are one step late {where}: the first evaluation must be at t = 0 and the "
            f"last at t = {fmt((steps - 1) / steps)}, i.e. t_k = k / steps for k = 0, ..., steps - 1 "
            "(the left end of each step)."
        )
    if steps > 1 and close(grid, torch.linspace(0, 1, steps, dtype=torch.float64), rtol=0, atol=1e-6):
        return (
            f"Your time grid has {steps} points from 0 to 1, so its last evaluation is at t = 1 and "
            f"its spacing 1/{steps - 1}. Use t_k = k / steps for k = 0, ..., steps - 1: {steps} steps of 1/{steps}."
        )
    if close(grid, 1 - want, rtol=0, atol=1e-6):
        return "Your times run backwards from t = 1; integrate forwards from t = 0 (noise) to t = 1 (data)."
    k = int((grid - want).abs().argmax())
    return (
        f"At step {k} the model received t = {fmt(c.times[k])}; the Euler grid {where} puts step {k} "
        f"at t = {fmt(float(want[k]))} (t_k = k / steps)."
    )


def _starts_at_x_0(c: _SampleCall) -> str | None:
    first_x = c.rec.model_calls[0].x.values
    if first_x is not None and not close(first_x.reshape(c.x_0.shape), c.x_0):
        return "The first evaluation must be at the starting points x_0 (the model received something else)."
    return None


def _returns_final_particles(c: _SampleCall) -> str | None:
    out, shape = c.rec.output, tuple(c.x_0.shape)
    assert out is not None
    if out.kind != "tensor":
        what = out.type_name or out.kind
        return f"euler_sample returned {what}; return the particles at t = 1, a tensor shaped like x_0."
    if out.shape == shape:
        return None if out.values is not None else "The result could not be read."
    if out.shape is not None and len(out.shape) == len(shape) + 1 and tuple(out.shape[1:]) == shape:
        return (
            f"euler_sample returned shape {shape_str(out.shape)}, a whole trajectory; return only "
            f"the particles after the last step, shape {shape_str(shape)}."
        )
    return f"euler_sample returned shape {shape_str(out.shape)}; the particles have shape {shape_str(shape)}."


def _mistakes(spec: dict[str, Any], x_0: Tensor, steps: int) -> list[tuple[Tensor, str]]:
    """The final particles of classic mistakes, with what to tell a learner who made one."""
    h = 1.0 / steps
    grid = [k * h for k in range(steps)]
    v_0 = velocity(spec, x_0, torch.zeros(x_0.shape[0], dtype=x_0.dtype))
    return [
        (x_0, "It equals the starting points: update x inside the loop (x = x + h * v) and return the updated x."),
        (_euler(spec, x_0, grid, 1.0), "It looks like the steps were not scaled by the step size: each step adds h * v with h = 1 / steps."),
        (_euler(spec, x_0, grid[:1], h), "It looks like only the first step was kept: x must be updated on every step."),
        (x_0 + h * v_0 * steps, "It looks like every step used the velocity at x_0: evaluate the model at the current x."),
    ]


def _final_particles(c: _SampleCall) -> str | None:
    x_0, spec = c.x_0, c.spec
    got = c.rec.output.values.reshape(x_0.shape)
    want = straightline.integrate(lambda x, t: velocity(spec, x, t), x_0, steps=c.steps, method="euler").x
    if close(got, want):
        return None
    for candidate, message in _mistakes(spec, x_0, c.steps):
        if close(got, candidate) and not close(candidate, want):
            return f"The final particles are wrong {c.where}. {message}"
    err = (got - want).abs().flatten(1).amax(dim=1)
    k = int(err.argmax())
    return (
        f"The final particles differ from Euler's result {c.where}: largest error {fmt(float(err[k]))}, "
        f"for particle {k}. Check the update x <- x + h * model(x, t_k) with h = 1 / steps."
    )


#: The checks of one call, in the order a learner meets the problems.
SAMPLE_CHECKS = (
    _no_error,
    _one_model_call_per_step,
    _steps_take_shared_tensor_times,
    _time_grid,
    _starts_at_x_0,
    _returns_final_particles,
    _final_particles,
)


def _check(case: Case, i: int, records: tuple[CallRecord, ...]) -> str | None:
    return first_problem(SAMPLE_CHECKS, _SampleCall(case, i, records))


EULER_SAMPLE = Exercise(
    name="euler_sample",
    title="Sampling with Euler steps",
    function="euler_sample",
    element_id="c5-build-euler-sample",
    signature="euler_sample(model, x_0, steps)",
    starter_code=STARTER,
    example_code=EXAMPLE,
    hints=HINTS,
    reference='straightline.integrate(model, x_0, steps=steps, method="euler").x',
    build_cases=_cases,
    check_call=_check,
)
