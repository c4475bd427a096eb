"""Chapter 6: reflow straightening, drawn in the two-point example. Independent pairs cross; the
averaged field's paths do not cross but bend; reflow's new pairs (each start with the end of its
path) are straight lines that do not cross either, so a field trained on them needs no bending."""

from __future__ import annotations

import torch

import straightline as sl

from .style import BLUE, GREEN, INK, MUTED, new_figure
from .two_point import marginal_paths

__all__ = ["draw", "facts", "starts"]

N = 14


def starts() -> list[float]:
    """N noise values at evenly spaced quantiles of N(0, 1)."""
    p = (torch.arange(N, dtype=torch.float64) + 0.5) / N  # [N]
    return torch.distributions.Normal(0.0, 1.0).icdf(p).tolist()


def _independent_ends() -> torch.Tensor:
    g = torch.Generator().manual_seed(6)
    return torch.tensor([-1.0, 1.0], dtype=torch.float64)[torch.randint(0, 2, (N,), generator=g)]  # [N]


def _crossings(x_0: torch.Tensor, x_1: torch.Tensor) -> int:
    """How many pairs of straight lines (t, (1 − t) x_0 + t x_1) cross for t in (0, 1)."""
    d_0, d_1 = x_0[:, None] - x_0[None], x_1[:, None] - x_1[None]  # [N, N]
    return int(((d_0 * d_1) < 0).triu(1).sum())


def facts() -> dict[str, int]:
    x_0 = torch.tensor(starts(), dtype=torch.float64)
    ends = marginal_paths(starts()).x[:, 0].sign()
    return {"crossings_independent": _crossings(x_0, _independent_ends()), "crossings_reflow": _crossings(x_0, ends)}


def _lines(ax, x_0, x_1, colour) -> None:
    for a, b in zip(x_0.tolist(), x_1.tolist()):
        ax.plot([0, 1], [a, b], color=colour, lw=1.3)


def draw():
    fig, axes = new_figure(7.4, 2.8, ncols=3, sharey=True)
    x_0 = torch.tensor(starts(), dtype=torch.float64)  # [N]
    traj = marginal_paths(starts())
    f = facts()
    _lines(axes[0], x_0, _independent_ends(), MUTED)
    for n in range(N):
        axes[1].plot(traj.ts, traj.xs[:, n, 0], color=BLUE, lw=1.3)
    _lines(axes[2], x_0, traj.x[:, 0].sign(), GREEN)
    titles = [f"1. independent pairs\n{f['crossings_independent']} crossings", "2. the trained flow's paths\nbend, never cross",
              f"3. reflow pairs\n{f['crossings_reflow']} crossings, straight"]
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10, color=INK)
        ax.set(xlabel="t", xlim=(0, 1), ylim=(-2.2, 2.2))
        ax.set_xticks([0, 1])
    axes[0].set(ylabel="x")
    fig.tight_layout()
    return fig
