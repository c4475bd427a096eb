"""Chapter 9: DDIM's evenly spaced steps k = 1000, 900, ..., 0 placed in flow time
t_k = sqrt(ᾱ_k) / (sqrt(ᾱ_k) + sqrt(1 − ᾱ_k)) (`NoiseSchedule.flow_time`), for the linear and the
cosine schedule, against an evenly spaced flow-matching grid of as many steps."""

from __future__ import annotations

import torch

import straightline as sl

from .style import BLUE, INK, MUTED, ORANGE, PINK, new_figure

__all__ = ["draw", "facts", "STEPS", "T"]

STEPS, T = 10, 1000


def _ks() -> torch.Tensor:
    return torch.tensor([round(i * T / STEPS) for i in range(STEPS, -1, -1)])  # [STEPS + 1], T .. 0


def grids() -> dict[str, torch.Tensor]:
    out = {name: sl.diffusion.make_schedule(name, T).flow_time(_ks()) for name in ("linear", "cosine")}
    out["flow matching"] = torch.linspace(0, 1, STEPS + 1, dtype=torch.float64)
    return out


def facts() -> dict[str, float | int]:
    g = grids()
    return {f"{name}_below_half": int((ts < 0.5).sum()) for name, ts in g.items()} | {
        "linear_first": float(g["linear"][1]), "cosine_first": float(g["cosine"][1]),
        "linear_last": float(g["linear"][-2]), "cosine_last": float(g["cosine"][-2])}


def draw():
    fig, ax = new_figure(6.8, 2.4)
    rows = list(grids().items())
    for row, ((name, ts), colour) in enumerate(zip(rows, (ORANGE, PINK, BLUE))):
        y = len(rows) - 1 - row
        ax.plot([0, 1], [y, y], color=MUTED, lw=0.8)
        ax.plot(ts, [y] * len(ts), "|", color=colour, ms=14, mew=2)
        label = f"DDIM, {name} schedule" if name != "flow matching" else "flow matching, even grid"
        ax.text(-0.02, y, label, ha="right", va="center", color=INK, fontsize=10)
    ax.set(xlim=(0, 1), ylim=(-0.6, len(rows) - 0.4), xlabel=f"flow time t of each of {STEPS} steps (noise 0, data 1)")
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    fig.tight_layout()
    return fig
