"""straightline: flow matching in PyTorch, verified against exact answers.

Conventions: noise x_0 at t = 0, data x_1 at t = 1; a velocity field is a callable v(x, t) with
x of shape [B, ...] and t of shape [B].

    import straightline as sl
    model = sl.models.MLP(dim=2)
    result = sl.train(model, "moons", steps=3000)
    x_1 = sl.sample(result.ema_model, torch.randn(1000, 2), steps=20, method="rk4")
"""

import importlib as _importlib
import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

# Public names -> (module, attribute or None for the module itself). Imported on first use, so
# `import straightline` (and the course server's start-up) does not pay for torch until needed.
_LAZY: dict[str, tuple[str, str | None]] = {
    "convert": ("convert", None),
    "couplings": ("couplings", None),
    "data": ("data", None),
    "diffusion": ("diffusion", None),
    "guidance": ("guidance", None),
    "likelihood": ("likelihood", None),
    "metrics": ("metrics", None),
    "models": ("models", None),
    "oracles": ("oracles", None),
    "so3": ("so3", None),
    "timesteps": ("timesteps", None),
    "load": ("checkpoints", "load"),
    "save": ("checkpoints", "save"),
    "cfm_loss": ("losses", "cfm_loss"),
    "CosinePath": ("paths", "CosinePath"),
    "GaussianPath": ("paths", "GaussianPath"),
    "LinearPath": ("paths", "LinearPath"),
    "PathSample": ("paths", "PathSample"),
    "VPPath": ("paths", "VPPath"),
    "Trajectory": ("solvers", "Trajectory"),
    "integrate": ("solvers", "integrate"),
    "sample": ("solvers", "sample"),
    "TrainResult": ("training", "TrainResult"),
    "train": ("training", "train"),
    "log_prob": ("likelihood", "log_prob"),
    "reflow": ("reflow", "reflow"),
    "reflow_rounds": ("reflow", "reflow_rounds"),
    "ReflowRound": ("reflow", "ReflowRound"),
    "distill": ("distill", "distill"),
    "DistillResult": ("distill", "DistillResult"),
    "flowmaps": ("flowmaps", None),
}

if _TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import convert, couplings, data, diffusion, flowmaps, guidance, likelihood, metrics, models, oracles, so3, timesteps
    from .checkpoints import load, save
    from .distill import DistillResult, distill
    from .likelihood import log_prob
    from .reflow import ReflowRound, reflow, reflow_rounds
    from .losses import cfm_loss
    from .paths import CosinePath, GaussianPath, LinearPath, PathSample, VPPath
    from .solvers import Trajectory, integrate, sample
    from .training import TrainResult, train


def __getattr__(name: str) -> _Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'straightline' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = _importlib.import_module(f".{module_name}", __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


class _Package(_types.ModuleType):
    """The package's module type: a submodule named like a public function (`reflow.py` holds
    `reflow`) must not replace the function when the submodule is imported first. (Python binds
    a submodule to its package's attribute on import; here that binding is skipped, and the
    submodule stays reachable as `sys.modules["straightline.reflow"]` and by `from ... import`.)"""

    def __setattr__(self, name: str, value: _Any) -> None:
        if isinstance(value, _types.ModuleType) and _LAZY.get(name, ("", None))[1] is not None:
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "CosinePath",
    "DistillResult",
    "GaussianPath",
    "LinearPath",
    "PathSample",
    "ReflowRound",
    "TrainResult",
    "Trajectory",
    "VPPath",
    "cfm_loss",
    "convert",
    "couplings",
    "data",
    "diffusion",
    "distill",
    "flowmaps",
    "guidance",
    "integrate",
    "likelihood",
    "load",
    "log_prob",
    "metrics",
    "models",
    "oracles",
    "reflow",
    "reflow_rounds",
    "sample",
    "save",
    "so3",
    "timesteps",
    "train",
]
