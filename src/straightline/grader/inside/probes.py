"""Probe velocity models for the Build-It tests: simple known fields that record their inputs.

This file is used on both sides of the sandbox, so it imports only the standard library and
torch (the sandbox does not see the rest of the package):

- inside the sandbox, `ProbeModel` is the `model` handed to the learner's function; it records the
  shape and values of every `x` and `t` it receives, which is how the trusted side learns the
  random times the learner's code drew;
- on the trusted side, `velocity(spec, x, t)` is the same field evaluated in float64 for the
  reference computation.

A field is described by a JSON-able spec:

    {"kind": "affine", "a": .., "b": .., "c": .., "d": ..}   v = a x + b t + c + d t x
    {"kind": "constant", "shape": [...], "values": [...]}    v = the given tensor (the worked example)

with t broadcast per example ([B] viewed as [B, 1, ..., 1]). Flow-map probes u(x, s, t) (the
`meanflow_target` exercise) are described the same way:

    {"kind": "gaussian", "mean": [...], "std": ..}    the exact average velocity of N(0, I) -> N(mean, std^2 I)
                                                      under the linear path (as flowmaps.GaussianFlowMap)
    {"kind": "smooth", "a": .., "b": .., "c": .., "d": .., "e": ..}
                                                      u = a tanh(x) + b s x + c t + d s t x + e s^2

The velocity probe never raises on odd
inputs (a t of the wrong shape, a Python float): it records them and still returns something
shaped like x, so the learner's function runs to the end and the grader can explain the mistake.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["FlowMapProbe", "ProbeModel", "flow_map", "velocity", "MAX_RECORDED_VALUES"]

#: Recorded x / t values are dropped (only shapes kept) above this many numbers.
MAX_RECORDED_VALUES = 20_000


def _time_like(t: Any, x: Tensor) -> Tensor:
    """t as a tensor that broadcasts against x: [B, 1, ..., 1] when it has one value per example."""
    t = torch.as_tensor(t, dtype=x.dtype if x.is_floating_point() else torch.float32)
    batch = x.shape[0] if x.ndim else 1
    if t.numel() == 1:
        return t.reshape(())
    if x.ndim and t.numel() == batch:
        return t.reshape(batch, *([1] * (x.ndim - 1)))
    try:
        torch.broadcast_shapes(t.shape, x.shape)
        return t
    except RuntimeError:
        return t.reshape(-1).mean()


def velocity(spec: dict[str, Any], x: Tensor, t: Any) -> Tensor:
    """The probe field `spec` at (x, t), shaped like x."""
    tb = _time_like(t, x)
    kind = spec["kind"]
    if kind == "affine":
        a, b, c, d = (float(spec[k]) for k in ("a", "b", "c", "d"))
        return a * x + b * tb + c + d * tb * x
    if kind == "constant":
        value = torch.tensor(spec["values"], dtype=x.dtype).reshape(spec["shape"])
        try:
            return value.expand_as(x).clone()
        except RuntimeError:
            return torch.full_like(x, float(value.mean()))
    raise ValueError(f"unknown probe kind {kind!r}; accepted: affine, constant")


def _describe(value: Any) -> dict[str, Any]:
    """Shape and (small enough) values of what the model received, as plain JSON data."""
    if isinstance(value, Tensor):
        flat = value.detach().to("cpu", torch.float64).reshape(-1)
        out: dict[str, Any] = {"type": "tensor", "shape": list(value.shape), "dtype": str(value.dtype)}
        if flat.numel() <= MAX_RECORDED_VALUES:
            out["values"] = flat.tolist()
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"type": "number", "shape": [], "values": [float(value)]}
    return {"type": type(value).__name__, "shape": None}


class ProbeModel(nn.Module):
    """A known velocity field that records every (x, t) it is called with.

    It has one learnable parameter (a scale fixed at 1), so a loss built from its output carries a
    gradient, and `next(model.parameters())` works for code that looks up the device or dtype.
    """

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        self.scale = nn.Parameter(torch.ones(()))
        self.calls: list[dict[str, Any]] = []

    def forward(self, x: Tensor, t: Any) -> Tensor:
        self.calls.append({"x": _describe(x), "t": _describe(t)})
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x, dtype=torch.float32)
        return velocity(self.spec, x, t) * self.scale


def _per_example(a: Tensor, like: Tensor) -> Tensor:
    """a [B] viewed as [B, 1, ..., 1] against like [B, ...]."""
    return a.reshape(-1, *([1] * (like.ndim - 1)))


def _gaussian_map(spec: dict[str, Any], x: Tensor, s: Tensor, t: Tensor) -> Tensor:
    mean = torch.tensor(spec["mean"], dtype=x.dtype)  # [D]
    var = float(spec["std"]) ** 2

    def sigma(tau: Tensor) -> Tensor:
        return torch.sqrt(tau**2 * var + (1 - tau) ** 2)  # [B, 1]

    sb, tb = _per_example(s, x), _per_example(t, x)  # [B, 1] each
    sig_s, sig_t = sigma(sb), sigma(tb)
    rate = ((sb + tb) * var + sb + tb - 2) / (sig_s * (sig_s + sig_t))  # [B, 1]
    return mean + (x - sb * mean) * rate  # [B, D]


def flow_map(spec: dict[str, Any], x: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """The flow-map probe `spec` at (x [B, ...], s [B], t [B]), shaped like x (differentiable in all three)."""
    kind = spec["kind"]
    if kind == "gaussian":
        return _gaussian_map(spec, x, s, t)
    if kind == "smooth":
        a, b, c, d, e = (float(spec[k]) for k in ("a", "b", "c", "d", "e"))
        sb, tb = _per_example(s, x), _per_example(t, x)  # [B, 1, ..., 1] each
        return a * torch.tanh(x) + b * sb * x + c * tb + d * sb * tb * x + e * sb**2
    raise ValueError(f"unknown flow-map probe kind {kind!r}; accepted: gaussian, smooth")


class FlowMapProbe(nn.Module):
    """A known flow map u(x, s, t), handed to the learner's meanflow_target.

    Its one learnable parameter (a scale fixed at 1) makes every output carry a gradient, so a
    target that was not detached is seen as such. It counts its calls and records nothing else
    (it is called inside forward-mode transforms, where recording values would be fragile).
    """

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        self.scale = nn.Parameter(torch.ones(()))
        self.n_calls = 0

    def forward(self, x: Tensor, s: Tensor, t: Tensor) -> Tensor:
        self.n_calls += 1
        return flow_map(self.spec, x, s, t) * self.scale
