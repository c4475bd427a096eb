"""Chapter 3: the pipeline of conditional flow matching, one training example in four steps, with
the chapter's worked example computed by the toolkit's linear path (x_0 = (0.5, -1), x_1 = (2, 1),
t = 0.25, a prediction (1, 1.5))."""

from __future__ import annotations

import torch

import straightline as sl

from .boxes import arrow, blank, box
from .style import BLUE, GREEN, INK, ORANGE, PINK, new_figure

__all__ = ["draw", "facts"]

X_0, X_1, T, PREDICTION = [0.5, -1.0], [2.0, 1.0], 0.25, [1.0, 1.5]


def facts() -> dict[str, list[float] | float]:
    s = sl.LinearPath().sample(torch.tensor([X_0]), torch.tensor([X_1]), torch.tensor([T]))
    loss = float(((torch.tensor([PREDICTION]) - s.u_t) ** 2).mean())
    return {"x_t": s.x_t[0].tolist(), "u_t": s.u_t[0].tolist(), "loss": loss}


def _vec(v: list[float]) -> str:
    return "(" + ", ".join(f"{a:g}".replace("-", "−") for a in v) + ")"


def draw():
    fig, ax = new_figure(7.4, 2.4)
    blank(ax, 15.4, 5.0)
    f = facts()
    steps = [
        ("1. Sample", f"noise x₀ = {_vec(X_0)}\ndata x₁ = {_vec(X_1)}\ntime t = {T:g}", BLUE),
        ("2. Interpolate", f"xₜ =\n(1 − t) x₀ + t x₁\n= {_vec(f['x_t'])}", GREEN),
        ("3. Target", f"u = x₁ − x₀\n= {_vec(f['u_t'])}", ORANGE),
        ("4. Loss", f"‖$v_\\theta$(xₜ, t) − u‖²\n$v_\\theta$ = {_vec(PREDICTION)}\nmean: {f['loss']:g}", PINK),
    ]
    for k, (title, body, colour) in enumerate(steps):
        x = 0.1 + k * 3.85
        box(ax, x, 0.3, 3.35, 3.3, body, colour, size=9.5)
        ax.text(x + 1.675, 4.1, title, ha="center", va="center", fontsize=11, color=INK, weight="bold")
        if k < 3:
            arrow(ax, (x + 3.4, 1.95), (x + 3.8, 1.95))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    return fig
