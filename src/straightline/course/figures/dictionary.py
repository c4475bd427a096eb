"""Chapter 9: the dictionary between the four things a network may predict on the linear path:
noise ε (x̂₀), data x̂₁, velocity v and score. Each arrow is one of the toolkit's conversions
(`straightline.convert`); the numbers are one instance, the two-point example at x = 0.5, t = 0.25,
converted from the exact velocity."""

from __future__ import annotations

import torch

import straightline as sl

from .boxes import arrow, blank, box
from .style import BLUE, GREEN, INK, ORANGE, PINK, new_figure
from .two_point import two_points

__all__ = ["draw", "facts", "X", "T"]

X, T = 0.5, 0.25


def facts() -> dict[str, float]:
    x = torch.tensor([[X]], dtype=torch.float64)  # [1, 1]
    t = torch.tensor([T], dtype=torch.float64)  # [1]
    v = two_points()(x, t)  # [1, 1]
    values = {kind: float(sl.convert.from_velocity(v, x, t, kind)) for kind in sl.convert.KINDS}
    values["score_oracle"] = float(two_points().score(x, t))
    return values


def draw():
    fig, ax = new_figure(7.2, 3.6)
    blank(ax, 14.4, 7.2)
    f = facts()
    nodes = {
        "velocity": (4.6, 2.8, f"velocity v\n{f['velocity']:.3f}", BLUE),
        "x1": (9.4, 5.6, f"data x̂₁\n{f['x1']:.3f}", GREEN),
        "noise": (9.4, 0.0, f"noise ε = x̂₀\n{f['noise']:.3f}", ORANGE),
        "score": (0.0, 0.0, f"score ∇log pₜ\n{f['score']:.3f}", PINK),
    }
    for x, y, text, colour in nodes.values():
        box(ax, x, y, 3.6, 1.5, text, colour, size=10)
    arrow(ax, (8.2, 4.3), (9.4, 5.6), "x̂₁ = x + (1 − t) v", style="<->", offset=(-2.0, 0.35))
    arrow(ax, (8.2, 2.8), (9.4, 1.5), "x̂₀ = x − t v", style="<->", offset=(-1.2, -0.35))
    arrow(ax, (4.6, 2.8), (3.6, 1.5), "score = −(x − t v) / (1 − t)", style="<->", offset=(-1.9, 0.2))
    arrow(ax, (9.4, 0.75), (3.6, 0.75), "score = −x̂₀ / (1 − t)", style="<->", offset=(0, 0.3))
    arrow(ax, (11.2, 1.5), (11.2, 5.6), style="<->")
    ax.text(11.4, 3.55, "x = (1 − t) x̂₀\n      + t x̂₁", ha="left", va="center", fontsize=9, color=INK)
    ax.text(0.0, 6.4, f"at x = {X:g}, t = {T:g}\n(data −1 and +1)", fontsize=9.5, va="center")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    return fig
