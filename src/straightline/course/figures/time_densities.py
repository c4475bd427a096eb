"""Chapter 4: the densities of training times. Uniform, logit-normal(0, 1), the density
1 / (Z (1 − t + ε)) equivalent to the end-heavy weight (ε = 0.01), and logit-normal(0, 1) after
SD3's shift with α = 3; beside them the shift map itself."""

from __future__ import annotations

import torch

import straightline as sl

from .style import BLUE, GREEN, INK, MUTED, ORANGE, PINK, new_figure

__all__ = ["draw", "facts"]

EPS, ALPHA = 0.01, 3.0


def _grid() -> torch.Tensor:
    return torch.linspace(0.0005, 0.9995, 400, dtype=torch.float64)  # [400]


def facts() -> dict[str, float]:
    t = torch.linspace(0, 1, 200001, dtype=torch.float64)  # [N]
    z = float(torch.trapezoid(sl.timesteps.inverse_one_minus_t(EPS)(t), t))
    return {"Z": z, "shift_half": float(sl.timesteps.shift(torch.tensor(0.5, dtype=torch.float64), ALPHA)),
            "end_heavy_peak": 1 / (z * EPS)}


def _densities(ax) -> None:
    t = _grid()
    z = facts()["Z"]
    curves = [
        ("uniform", sl.timesteps.uniform().density(t), MUTED),
        ("logit-normal(0, 1)", sl.timesteps.logit_normal(0.0, 1.0).density(t), BLUE),
        (f"1 / (Z (1 − t + ε)), ε = {EPS:g}", sl.timesteps.inverse_one_minus_t(EPS)(t) / z, ORANGE),
        (f"logit-normal, shifted, α = {ALPHA:g}", sl.timesteps.shifted(sl.timesteps.logit_normal(), ALPHA).density(t), PINK),
    ]
    for label, density, colour in curves:
        ax.plot(t, density, color=colour, label=label)
    ax.set(xlabel="time t  (noise 0, data 1)", ylabel="density π(t)", xlim=(0, 1), ylim=(0, 3.2))
    ax.legend(loc="upper center", bbox_to_anchor=(0.62, -0.22), fontsize=9.5, ncol=2, columnspacing=1.2,
              handlelength=1.5)


def _shift(ax) -> None:
    t = _grid()
    ax.plot(t, t, color=MUTED, lw=1, ls="--")
    ax.plot(t, sl.timesteps.shift(t, ALPHA), color=PINK)
    half = facts()["shift_half"]
    ax.plot([0.5, 0.5], [0, half], color=GREEN, lw=1)
    ax.plot([0, 0.5], [half, half], color=GREEN, lw=1)
    ax.plot([0.5], [half], "o", color=GREEN, ms=5)
    ax.annotate(f"0.5 ↦ {half:g}", (0.5, half), xytext=(8, -4), textcoords="offset points", color=INK, fontsize=10)
    ax.set(xlabel="t", ylabel=f"shifted t (α = {ALPHA:g})", xlim=(0, 1), ylim=(0, 1), aspect="equal")
    ax.set_xticks([0, 0.5, 1])
    ax.set_yticks([0, half, 0.5, 1])


def draw():
    fig, (left, right) = new_figure(7.4, 3.9, ncols=2, gridspec_kw={"width_ratios": [1.7, 1]})
    _densities(left)
    _shift(right)
    fig.tight_layout()
    return fig
