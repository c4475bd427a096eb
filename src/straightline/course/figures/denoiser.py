"""Chapter 5: the denoiser view x̂₁ = x + (1 − t) v in the two-point example. One Euler step of
size 1 − t from (t, x) lands on x̂₁ = E[x₁ | x_t = x]: from t = 0 every start lands on the data's
average, 0; from later times the jumps land close to the data points."""

from __future__ import annotations

import torch

import straightline as sl

from .style import BLUE, GRID, INK, ORANGE, PINK, new_figure
from .two_point import STARTS, marginal_paths, two_points

__all__ = ["draw", "facts", "jumps"]

FROM = {0.0: [-1.6, -0.8, 0.4, 1.2], 0.6: [-0.9, -0.3, 0.15, 0.7]}


def jumps(t: float, xs: list[float]) -> torch.Tensor:
    """x̂₁ = x + (1 − t) v(x, t) for the exact field, [N]."""
    x = torch.tensor(xs, dtype=torch.float64)[:, None]  # [N, 1]
    tt = torch.full((len(xs),), t, dtype=torch.float64)  # [N]
    return sl.convert.velocity_to_x1(two_points()(x, tt), x, tt)[:, 0]


def facts() -> dict[str, float]:
    return {"max_landing_from_0": float(jumps(0.0, FROM[0.0]).abs().max()),
            "landings_from_06": jumps(0.6, FROM[0.6]).tolist()}


def draw():
    fig, ax = new_figure(6.4, 3.4)
    traj = marginal_paths(STARTS)
    for n in range(len(STARTS)):
        ax.plot(traj.ts, traj.xs[:, n, 0], color=GRID, lw=1.2, zorder=1)
    for (t, xs), colour in zip(FROM.items(), (ORANGE, PINK)):
        ends = jumps(t, xs)
        for x, end in zip(xs, ends.tolist()):
            ax.annotate("", (1.0, end), xytext=(t, x),
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.3, "shrinkA": 0, "shrinkB": 0})
            ax.plot([t], [x], "o", color=colour, ms=4)
        ax.text(t + 0.02, max(xs) + 0.45, f"one step from t = {t:g}", color=colour, fontsize=10)
    ax.plot([1, 1], [-1, 1], "o", color=INK, ms=5)
    ax.plot([1], [0], "s", color=BLUE, ms=5)
    ax.annotate("average of the data", (1, 0), xytext=(-6, 8), textcoords="offset points", ha="right", color=BLUE,
                fontsize=9)
    ax.set(xlabel="time t", ylabel="position x", xlim=(-0.02, 1.04), ylim=(-2.1, 2.1))
    ax.set_yticks([-2, -1, 0, 1, 2])
    fig.tight_layout()
    return fig
