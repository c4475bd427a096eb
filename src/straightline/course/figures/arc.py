"""Chapter 0: the straight segment of the linear path against the arc of the VP diffusion path,
for one noise sample and one data point, with a dot every 0.1 of time on each."""

from __future__ import annotations

import torch

import straightline as sl

from .style import BLUE, INK, MUTED, ORANGE, new_figure

__all__ = ["draw", "facts"]

X_0 = [-1.3, 0.35]  # one noise sample
X_1 = [0.9, 1.25]  # one data point


def _route(path, t):  # t [K] -> positions [K, 2]
    x_0 = torch.tensor([X_0], dtype=torch.float64).expand(len(t), 2)  # [K, 2]
    x_1 = torch.tensor([X_1], dtype=torch.float64).expand(len(t), 2)  # [K, 2]
    return path.sample(x_0, x_1, t).x_t


def facts() -> dict[str, float]:
    vp = sl.VPPath()
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    return {"vp_alpha_0": float(vp.alpha(t[:1])), "vp_alpha_half": float(vp.alpha(t[1:2])),
            "vp_sigma_half": float(vp.sigma(t[1:2]))}


def _weights(ax, t) -> None:
    """Left: the (data weight, noise weight) pairs of the two paths."""
    vp, lin = sl.VPPath(), sl.LinearPath()
    ax.plot(lin.alpha(t), lin.sigma(t), color=BLUE, label="linear: (t, 1 − t)")
    ax.plot(vp.alpha(t), vp.sigma(t), color=ORANGE, label="VP: α² + σ² = 1")
    dots = t[::10]
    ax.plot(lin.alpha(dots), lin.sigma(dots), "o", color=BLUE, ms=4)
    ax.plot(vp.alpha(dots), vp.sigma(dots), "o", color=ORANGE, ms=4)
    ax.set(xlabel="data weight αₜ", ylabel="noise weight σₜ", xlim=(-0.05, 1.1), ylim=(-0.05, 1.1), aspect="equal")
    ax.set_xticks([0, 0.5, 1])
    ax.set_yticks([0, 0.5, 1])
    ax.legend(loc="upper right", fontsize=9)


def _positions(ax, t) -> None:
    """Right: where x_t is, for one pair (x_0, x_1)."""
    for path, colour in ((sl.LinearPath(), BLUE), (sl.VPPath(), ORANGE)):
        xs = _route(path, t)  # [K, 2]
        ax.plot(xs[:, 0], xs[:, 1], color=colour)
        ax.plot(xs[::10, 0], xs[::10, 1], "o", color=colour, ms=4)
    ax.plot([0], [0], "+", color=MUTED, ms=8)
    ax.annotate("x₀ (noise)", X_0, xytext=(0, -16), textcoords="offset points", ha="center", color=INK)
    ax.annotate("x₁ (data)", X_1, xytext=(0, 9), textcoords="offset points", ha="center", color=INK)
    ax.annotate("origin", (0, 0), xytext=(6, 4), textcoords="offset points", color=MUTED, fontsize=9)
    ax.set(xlim=(-1.7, 1.4), ylim=(-0.4, 1.6), aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


def draw():
    fig, (left, right) = new_figure(7.2, 3.3, ncols=2, gridspec_kw={"width_ratios": [1, 1.25]})
    t = torch.linspace(0, 1, 101, dtype=torch.float64)  # [101]
    _weights(left, t)
    _positions(right, t)
    fig.tight_layout()
    return fig
