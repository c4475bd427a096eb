"""Calling a user's velocity field safely: v(x, t, **cond) with checked inputs and outputs.

Shared by the ODE solvers, the SDE sampler and the likelihood. Errors name the bad value and
what is accepted: a numpy array where a tensor is expected, an output of the wrong shape (which
would otherwise broadcast silently), a model written as forward(t, x), NaN or inf in the result.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["CountedField", "as_batch", "as_conditions", "chunk_conditions", "check_finite", "check_signature"]

_TIME_NAMES = ("t", "time", "times", "timestep", "timesteps", "sigma", "s")
_CALL_HINT = (
    "velocity fields are called as v(x, t, **cond) with x [B, ...] and t [B]; "
    "a model written as forward(t, x) needs a wrapper: lambda x, t, **c: model(t, x, **c)"
)


def _model_dtype(v: object) -> tuple[torch.dtype, torch.device] | None:
    if not isinstance(v, nn.Module):
        return None
    param = next(iter(v.parameters()), None)
    if param is None or not param.is_floating_point():
        return None
    return param.dtype, param.device


def as_batch(x: object, v: object, name: str = "x_0") -> Tensor:
    """x as a tensor batch [B, ...]: numpy arrays are accepted (cast to the model's dtype/device)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
        spec = _model_dtype(v)
        if spec is not None:
            x = x.to(dtype=spec[0], device=spec[1])
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a tensor (or numpy array) of shape [B, ...], got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch [B, ...], got shape {list(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def as_conditions(cond: dict[str, Any], like: Tensor) -> dict[str, Any]:
    """Keyword conditions with numpy arrays turned into tensors on `like`'s device."""
    out = {}
    for key, value in cond.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value).to(like.device)
            value = value.to(like.dtype) if value.is_floating_point() else value
        out[key] = value
    return out


def chunk_conditions(cond: dict[str, Any], batch: int, start: int, stop: int) -> dict[str, Any]:
    """The rows start:stop of every condition that has one row per sample ([B, ...]); others as is."""
    return {
        k: v[start:stop] if isinstance(v, Tensor) and v.ndim >= 1 and v.shape[0] == batch else v
        for k, v in cond.items()
    }


def check_signature(v: Callable[..., Tensor]) -> None:
    """Refuse a field whose first parameter is named like a time (forward(t, x)): a clear error."""
    target = v.forward if isinstance(v, nn.Module) else v
    try:
        params = [p for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return
    if len(params) >= 2 and params[0].name in _TIME_NAMES:
        raise ValueError(f"the velocity field's first argument is named {params[0].name!r}: {_CALL_HINT}")


def check_finite(x: Tensor, what: str) -> None:
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{what} contains {bad} non-finite values (NaN or inf): the velocity field returned NaN/inf "
            "or the solver diverged (try more steps, a smaller step, or check the model and its inputs)"
        )


class CountedField:
    """v(x, t, **cond) counted (NFE), t expanded to [B], the output's shape checked on every call."""

    def __init__(self, v: Callable[..., Tensor], batch: int, cond: dict[str, Any] | None = None):
        self.v, self.batch, self.cond, self.nfe = v, batch, cond or {}, 0

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        self.nfe += 1
        t = t.expand(self.batch)  # [B]
        try:
            out = self.v(x, t, **self.cond)  # [B, ...]
        except (RuntimeError, TypeError, IndexError) as err:
            if self.nfe > 1:
                raise
            keys = f", {', '.join(k + '=...' for k in self.cond)}" if self.cond else ""
            raise ValueError(
                f"the velocity field failed on its first call v(x {list(x.shape)}, t {list(t.shape)}{keys}): "
                f"{err}. {_CALL_HINT}"
            ) from err
        if not isinstance(out, Tensor) or out.shape != x.shape:
            got = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the velocity field returned shape {got} for x of shape {list(x.shape)}; it must return "
                f"a tensor shaped like x (no broadcasting). {_CALL_HINT}"
            )
        return out
