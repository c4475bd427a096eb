"""Flow maps: learn where a particle at time s will be at time t, and generate in one or a few jumps.

Conventions (the toolkit's): noise x_0 at t = 0, data x_1 at t = 1; a flow map is a callable
u(x [B, ...], s [B], t [B]) -> [B, ...], the average velocity from s to t >= s, so that

    X_{s,t}(x) = x + (t - s) u(x, s, t),      u(x, s, s) = v(x, s),

and one-step sampling is x_1 = x_0 + u(x_0, 0, 1). Along a trajectory of the flow (dx/ds = v),
d/ds [(t - s) u(x_s, s, t)] = -v(x_s, s), which gives the MeanFlow identity in this convention:

    u(x_s, s, t) = v(x_s, s) + (t - s) (v · ∇_x u + ∂_s u),

one Jacobian-vector product of u with the tangent (v, 1, 0) for (x, s, t).

    import straightline as sl
    from straightline import flowmaps
    model = sl.models.FlowMapMLP(dim=2, hidden=256, depth=3)
    result = flowmaps.train(model, "moons", method="meanflow", steps=4000)
    x_1 = flowmaps.sample(result.ema_model, torch.randn(1000, 2), steps=1).x
"""

from .exact import GaussianFlowMap
from .losses import lsd_loss, meanflow_loss, shortcut_loss
from .maps import FlowMap, average_velocity, meanflow_target, sample
from .training import train

__all__ = [
    "FlowMap", "GaussianFlowMap", "average_velocity", "lsd_loss", "meanflow_loss", "meanflow_target", "sample",
    "shortcut_loss", "train",
]
