"""Chapter 2 (referred back to in 3 and 6): the (t, x) plane of the two-point example. Noise
N(0, 1), data -1 and +1: the straight conditional lines of independent pairs cross, and the
marginal paths of the exact averaged field (the toolkit's Gaussian-mixture oracle with a tiny
spread) turn round before heading for their data point."""

from __future__ import annotations

import torch

import straightline as sl

from .style import BLUE, INK, MUTED, ORANGE, new_figure

__all__ = ["draw", "facts", "two_points", "marginal_paths"]

STARTS = [-2.0, -1.4, -0.9, -0.5, -0.25, 0.1, 0.25, 0.5, 0.9, 1.4, 2.0]
LINE_STARTS = [-1.0, 1.0, 0.1]
T_END = 0.995  # the exact field is singular at t = 1 (the data are points)


def two_points() -> sl.oracles.GaussianMixture:
    """Data -1 and +1, equally likely (a mixture whose spread 1e-3 stands in for points)."""
    return sl.oracles.GaussianMixture([[-1.0], [1.0]], [1e-3])


def marginal_paths(starts: list[float]) -> sl.Trajectory:
    x_0 = torch.tensor(starts, dtype=torch.float64)[:, None]  # [N, 1]
    return sl.integrate(two_points(), x_0, steps=400, method="rk4", t_span=(0.0, T_END), keep_path=True)


def facts() -> dict[str, float]:
    """The particle from x_0 = 0.1: where and when it turns round, and where it ends."""
    traj = marginal_paths([0.1])
    xs = traj.xs[:, 0, 0]  # [K]
    i = int(torch.argmin(xs))
    return {"turn_t": float(traj.ts[i]), "turn_x": float(xs[i]), "end_x": float(xs[-1])}


def draw():
    fig, ax = new_figure(6.4, 3.6)
    t = torch.linspace(0, 1, 2, dtype=torch.float64)
    for x_0 in LINE_STARTS:
        for x_1 in (-1.0, 1.0):
            ax.plot(t, (1 - t) * x_0 + t * x_1, color=MUTED, lw=1, ls="--", zorder=1)
    traj = marginal_paths(STARTS)
    for n in range(len(STARTS)):
        ax.plot(traj.ts, traj.xs[:, n, 0], color=ORANGE if STARTS[n] == 0.1 else BLUE, lw=1.6, zorder=2)
    f = facts()
    ax.plot([f["turn_t"]], [f["turn_x"]], "o", color=ORANGE, ms=5, zorder=3)
    ax.annotate(f"turns round at t ≈ {f['turn_t']:.2f}", (f["turn_t"], f["turn_x"]), xytext=(0.16, 1.75),
                textcoords="data", color=INK, fontsize=10, arrowprops={"arrowstyle": "->", "color": INK, "lw": 0.8})
    ax.text(0.56, -1.75, "dashed: straight lines of pairs\nsolid: paths of the averaged field", color=MUTED, fontsize=9)
    ax.plot([1, 1], [-1, 1], "o", color=INK, ms=5, zorder=3)
    ax.set(xlabel="time t", ylabel="position x", xlim=(0, 1.04), ylim=(-2.1, 2.1))
    ax.set_yticks([-2, -1, 0, 1, 2])
    fig.tight_layout()
    return fig
