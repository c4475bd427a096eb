"""straightline: flow matching in PyTorch, verified against exact answers.

Conventions: noise x_0 at t = 0, data x_1 at t = 1; a velocity field is a callable v(x, t) with
x of shape [B, ...] and t of shape [B].

    import straightline as sl
    model = sl.models.MLP(dim=2)
    result = sl.train(model, "moons", steps=3000)
    x_1 = sl.sample(result.ema_model, torch.randn(1000, 2), steps=20, method="rk4")
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"

# The public API, one line per name: name -> (submodule, attribute; None for the submodule itself).
# Imported on first use, so `import straightline` (and the course server's start-up) does not pay
# for torch until needed. No public function shares its name with a submodule (`reflow` lives in
# `reflowing.py`, `distill` in `distilling.py`), so importing a submodule never hides a function.
_PUBLIC: dict[str, tuple[str, str | None]] = {
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
    "reflow": ("reflowing", "reflow"),
    "reflow_rounds": ("reflowing", "reflow_rounds"),
    "ReflowRound": ("reflowing", "ReflowRound"),
    "distill": ("distilling", "distill"),
    "DistillResult": ("distilling", "DistillResult"),
    "TrainConfig": ("training", "TrainConfig"),
    "TrainState": ("training", "TrainState"),
    "BrownianBridgePath": ("paths", "BrownianBridgePath"),
    "sde": ("sde", None),
    "conditions": ("conditions", None),
    "flowmaps": ("flowmaps", None),
}

__all__ = sorted(_PUBLIC)

if _TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import conditions, convert, couplings, data, diffusion, flowmaps, guidance, likelihood, metrics, models, oracles, sde, so3, timesteps
    from .checkpoints import load, save
    from .distilling import DistillResult, distill
    from .likelihood import log_prob
    from .losses import cfm_loss
    from .paths import BrownianBridgePath, CosinePath, GaussianPath, LinearPath, PathSample, VPPath
    from .reflowing import ReflowRound, reflow, reflow_rounds
    from .solvers import Trajectory, integrate, sample
    from .training import TrainConfig, TrainResult, TrainState, train


def __getattr__(name: str) -> _Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'straightline' has no attribute {name!r}")
    module_name, attr = _PUBLIC[name]
    module = _importlib.import_module(f".{module_name}", __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(__all__))
