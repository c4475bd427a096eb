"""straightline: flow matching in PyTorch, verified against exact answers.

Conventions: noise x_0 at t = 0, data x_1 at t = 1; a velocity field is a callable v(x, t) with
x of shape [B, ...] and t of shape [B].

    import straightline as sl
    model = sl.models.MLP(dim=2)
    result = sl.train(model, "moons", steps=3000)
    x_1 = sl.sample(result.ema_model, torch.randn(1000, 2), steps=20, method="rk4")
"""

from . import couplings, data, metrics, models, oracles, timesteps
from .checkpoints import load, save
from .losses import cfm_loss
from .paths import CosinePath, GaussianPath, LinearPath, PathSample, VPPath
from .solvers import Trajectory, integrate, sample
from .train import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "CosinePath",
    "GaussianPath",
    "LinearPath",
    "PathSample",
    "TrainResult",
    "Trajectory",
    "VPPath",
    "cfm_loss",
    "couplings",
    "data",
    "integrate",
    "load",
    "metrics",
    "models",
    "oracles",
    "sample",
    "save",
    "timesteps",
    "train",
]
