"""Chapter 7: `meanflow_target(u, x, s, t, v)`, the MeanFlow regression target.

Deterministic: the expected value is the toolkit's `flowmaps.meanflow_target` on the same probe
flow map in float64. The probes are the exact Gaussian flow map (where the target must equal
u(x, s, t) itself: the MeanFlow identity) and a smooth map whose partial derivatives in x, s and
t are all different, so that each classic mistake (the sign of the (t - s) term, a wrong tangent,
the times swapped, the velocity term dropped, no stop-gradient) gives a different number and is
recognised by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor
from torch.func import jvp

from straightline.flowmaps import meanflow_target

from ..inside.probes import flow_map
from ..protocol import CallRecord
from .base import Arg, Call, Case, Exercise, close, explain_error, first_problem, fmt, shape_str

__all__ = ["MEANFLOW_TARGET", "MISTAKES", "variant_target"]

STARTER = '''import torch
from torch.func import jvp


def meanflow_target(u, x, s, t, v):
    """The MeanFlow regression target at (x, s, t), detached, shaped like x.

    u(x, s, t) is a flow map: the average velocity from time s to time t >= s (noise at 0, data
    at 1); x has shape [B, ...], s and t shape [B], and v (shaped like x) is the velocity at
    (x, s). Along the trajectory through x at time s, the total derivative of u with respect to
    the start time is  du/ds = v . grad_x u + d_s u  (t stays fixed). Return
        v + (t - s) du/ds
    computed with one Jacobian-vector product, torch.func.jvp, and with no gradient attached.
    """
    raise NotImplementedError("write meanflow_target here")
'''

EXAMPLE = '''import torch
from straightline.flowmaps import GaussianFlowMap

# the exact flow map from N(0, I) to N((1.5, -0.5), 0.5^2 I):
# for it, the target equals u itself
u = GaussianFlowMap(mean=(1.5, -0.5), std=0.5)
x = torch.tensor([[0.3, -1.2], [1.0, 0.4], [-0.7, 0.9]], dtype=torch.float64)
s = torch.tensor([0.0, 0.2, 0.5], dtype=torch.float64)
t = torch.tensor([1.0, 0.7, 0.5], dtype=torch.float64)
v = u.velocity(x, s)  # the exact velocity at (x, s)
print(meanflow_target(u, x, s, t, v) - u(x, s, t))  # zeros (up to rounding)
'''

HINTS = (
    "torch.func.jvp(f, primals, tangents) returns f(*primals) and the derivative of f in the "
    "direction `tangents`. Here f is u itself, the primals are (x, s, t), and the direction is "
    "how each of the three inputs changes per unit of the start time s along the trajectory.",
    "Along the trajectory x moves with velocity v and s grows at rate 1, while the end time t "
    "does not move. The derivative comes out shaped like x; the time difference t - s has shape "
    "[B] and must be viewed as [B, 1, ..., 1] to multiply it.",
    "_, du_ds = jvp(u, (x, s, t), (v, torch.ones_like(s), torch.zeros_like(t))); view t - s as "
    "[B, 1, ..., 1]; combine v and du_ds as in the docstring, and return the result after .detach().",
)

ERROR_HINTS = {
    "The size of tensor a": "Check the shape of t - s: it is [B] and must be viewed as [B, 1, ..., 1] "
    "(one singleton per data dimension, from x.dim()) to multiply a tensor shaped like x.",
    "must match the size of tensor": "Check the shape of t - s: view it as [B, 1, ..., 1] before multiplying.",
    "Expected primals to be a tuple": "jvp takes the inputs as a tuple (x, s, t) and the tangents as a tuple of the same length.",
    "tangent": "jvp needs one tangent per input, each shaped like its input: (shaped like x, shaped like s, shaped like t).",
}


def _gaussian(mean: list[float], std: float) -> dict[str, Any]:
    return {"kind": "gaussian", "mean": mean, "std": std}


def _smooth(a: float, b: float, c: float, d: float, e: float) -> dict[str, Any]:
    return {"kind": "smooth", "a": a, "b": b, "c": c, "d": d, "e": e}


def _exact_velocity(spec: dict[str, Any], x: Tensor, s: Tensor) -> Tensor:
    return flow_map(spec, x.double(), s.double(), s.double()).float()  # u(x, s, s) = v(x, s)


def _call(spec: dict[str, Any], x: Tensor, s: Tensor, t: Tensor, v: Tensor | None = None) -> Call:
    v = _exact_velocity(spec, x, s) if v is None else v
    return Call(
        params={"u": Arg.flow_map(spec), "x": Arg.data(x), "s": Arg.data(s), "t": Arg.data(t), "v": Arg.data(v)},
        positional=("u", "x", "s", "t", "v"),
    )


def _times(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """n pairs 0 <= s < t <= 1, different per example."""
    a, b = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    return torch.minimum(a, b), torch.maximum(a, b)


def _cases() -> tuple[Case, ...]:
    gen = torch.Generator().manual_seed(7070)
    x_example = torch.tensor([[0.3, -1.2], [1.0, 0.4], [-0.7, 0.9]])
    example = _gaussian([1.5, -0.5], 0.5)
    smooth = _smooth(0.8, -0.6, 0.4, 1.1, 0.7)
    x2, x3, x4 = torch.randn(6, 2, generator=gen), torch.randn(5, 3, generator=gen), torch.randn(4, 1, 2, 2, generator=gen)
    s2, t2 = _times(6, gen)
    s3, t3 = _times(5, gen)
    s4, t4 = _times(4, gen)
    v2, v4 = torch.randn(6, 2, generator=gen), torch.randn(4, 1, 2, 2, generator=gen)
    return (
        Case(id="gaussian-identity", name="the exact Gaussian flow map: the target equals u(x, s, t)", visible=True,
             calls=(_call(example, x_example, torch.tensor([0.0, 0.2, 0.5]), torch.tensor([1.0, 0.7, 0.5])),)),
        Case(id="gaussian-3d", name="another exact Gaussian flow map in 3-D, times different per example",
             visible=False, calls=(_call(_gaussian([-1.0, 0.5, 2.0], 1.7), x3, s3, t3),)),
        Case(id="smooth-map", name="a flow map that depends on x, s and t in different ways, any v",
             visible=False, calls=(_call(smooth, x2, s2, t2, v2),)),
        Case(id="images-4d", name="a batch of images [B, C, H, W]", visible=False,
             calls=(_call(_smooth(-0.5, 0.9, 1.3, -0.4, 0.6), x4, s4, t4, v4),)),
        Case(id="diagonal", name="s = t: the target is the velocity v", visible=False,
             calls=(_call(smooth, x2, s2, s2, v2),)),
    )


# ------------------------------------------------------------------------------------------------
# checks


def variant_target(spec: dict[str, Any], x: Tensor, s: Tensor, t: Tensor, v: Tensor, *,
                   tangent: tuple[float, float, float], sign: float = 1.0, with_v: bool = True,
                   factor: bool = True, swap: bool = False) -> Tensor:
    """A target computed like the right one but with one thing changed (float64)."""
    def u(x_, s_, t_):
        return flow_map(spec, x_, s_, t_)

    tv, ts, tt = tangent
    primals = (x, t, s) if swap else (x, s, t)  # swap: u evaluated at (x, t, s)
    _, du = jvp(u, primals, (tv * v, ts * torch.ones_like(s), tt * torch.ones_like(t)))  # [B, ...]
    gap = (t - s) if factor else torch.ones_like(s)  # [B]
    return (v if with_v else 0) + sign * gap.reshape(-1, *([1] * (x.ndim - 1))) * du


#: (what the mistaken target is, what to tell a learner whose result matches it)
MISTAKES: tuple[tuple[dict[str, Any], str], ...] = (
    ({"tangent": (1, 1, 0), "sign": -1.0},
     "The correction term enters with the wrong sign. Differentiate (t - s) u(x_s, s, t) with respect to s "
     "again and watch what the derivative of the factor (t - s) contributes."),
    ({"tangent": (1, 0, 0)},
     "Your derivative follows x along the trajectory but forgets that u also depends on the start time s "
     "directly: in the tangent, s moves too."),
    ({"tangent": (0, 1, 0)},
     "Your derivative lets the start time s move but keeps x fixed: along the trajectory x moves with "
     "velocity v, so the tangent for x is not zero."),
    ({"tangent": (1, 0, 1)},
     "Your derivative moves the end time t instead of the start time s: the total derivative is taken "
     "with respect to s, and t stays fixed."),
    ({"tangent": (1, 1, 1)},
     "Your derivative moves the end time t as well: only the start time s (and x with it) moves; t stays fixed."),
    ({"tangent": (1, 1, 0), "swap": True},
     "It looks like u was called with its two times swapped: the flow map is u(x, s, t), start time first."),
    ({"tangent": (1, 1, 0), "with_v": False},
     "Your target is missing the velocity term: it starts from v and adds the correction."),
    ({"tangent": (1, 1, 0), "factor": False},
     "Your correction term is not scaled by the time gap t - s."),
)


@dataclass
class _TargetCall:
    """One call of the learner's meanflow_target and what the checks need, in table order."""

    case: Case
    i: int
    records: tuple[CallRecord, ...]

    @property
    def rec(self) -> CallRecord:
        return self.records[self.i]

    def arg(self, name: str) -> Tensor:
        return self.case.calls[self.i].tensor(name)

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.case.calls[self.i].params["u"].spec or {})

    @property
    def got(self) -> Tensor:
        return self.rec.output.values.reshape(self.arg("x").shape)

    def want(self) -> Tensor:
        spec = self.spec
        return meanflow_target(lambda x, s, t: flow_map(spec, x, s, t), self.arg("x"), self.arg("s"), self.arg("t"), self.arg("v"))


def _no_error(c: _TargetCall) -> str | None:
    return explain_error(c.rec.error, function="meanflow_target", hints=ERROR_HINTS) if c.rec.error is not None else None


def _returns_shaped_like_x(c: _TargetCall) -> str | None:
    out, shape = c.rec.output, tuple(c.arg("x").shape)
    assert out is not None
    if out.kind != "tensor":
        what = "a tuple" if out.type_name == "tuple" else (out.type_name or out.kind)
        extra = " (jvp returns a pair: the value of u and its derivative; keep the derivative)" if out.type_name == "tuple" else ""
        return f"meanflow_target returned {what}{extra}; return one tensor shaped like x, {shape_str(shape)}."
    if out.shape != shape:
        return f"meanflow_target returned shape {shape_str(out.shape)}; the target is shaped like x, {shape_str(shape)}."
    return None if out.values is not None else "The result could not be read."


def _value(c: _TargetCall) -> str | None:
    want, got = c.want(), c.got
    if close(got, want):
        return None
    x, s, t, v = (c.arg(n) for n in ("x", "s", "t", "v"))
    if close(got, flow_map(c.spec, x, s, t)) and not close(want, flow_map(c.spec, x, s, t)):
        return "You returned u(x, s, t) itself: that is the network's prediction; the target is built from v and a derivative of u."
    for options, message in MISTAKES:
        candidate = variant_target(c.spec, x, s, t, v, **options)
        if close(got, candidate) and not close(candidate, want):
            return message
    err = (got - want).abs().flatten(1).amax(dim=1)
    k = int(err.argmax())
    return (
        f"The target differs from v + (t - s) du/ds by up to {fmt(float(err[k]))} (example {k}, with "
        f"s = {fmt(float(s[k]))} and t = {fmt(float(t[k]))}). Check the tangent of the Jacobian-vector "
        "product and how the pieces are combined."
    )


def _detached(c: _TargetCall) -> str | None:
    if not c.rec.output.requires_grad:
        return None
    return (
        "The value is right, but the target still carries a gradient: in training, the loss would then "
        "also push the network through its own target. MeanFlow stops the gradient there; return the "
        "target detached from the graph."
    )


CHECKS: tuple[Callable[[_TargetCall], str | None], ...] = (_no_error, _returns_shaped_like_x, _value, _detached)


def _check(case: Case, i: int, records: tuple[CallRecord, ...]) -> str | None:
    return first_problem(CHECKS, _TargetCall(case, i, records))


MEANFLOW_TARGET = Exercise(
    name="meanflow_target",
    title="The MeanFlow target",
    function="meanflow_target",
    element_id="c7-build-meanflow-target",
    signature="meanflow_target(u, x, s, t, v)",
    starter_code=STARTER,
    example_code=EXAMPLE,
    hints=HINTS,
    reference="straightline.flowmaps.meanflow_target",
    build_cases=_cases,
    check_call=_check,
)
