"""Chapter 2: the two trucks. Warehouses at 0 and 1, shops at 2 and 3; positions against time for
the two pairings, the cheaper one being the pairing the toolkit's exact OT returns."""

from __future__ import annotations

import torch

import straightline as sl

from .style import BLUE, INK, MUTED, ORANGE, PINK, new_figure

__all__ = ["draw", "facts", "plans"]

WAREHOUSES = [0.0, 1.0]
SHOPS = [2.0, 3.0]


def plans() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Plan A (exact OT's pairing) and Plan B (the other one) as (starts [2, 1], ends [2, 1])."""
    x_0 = torch.tensor(WAREHOUSES, dtype=torch.float64)[:, None]  # [2, 1]
    x_1 = torch.tensor(SHOPS, dtype=torch.float64)[:, None]  # [2, 1]
    a_0, a_1 = sl.couplings.exact_ot(x_0, x_1)
    return {"A": (a_0, a_1), "B": (a_0, a_1.flip(0))}


def facts() -> dict[str, float]:
    out = {}
    for name, (x_0, x_1) in plans().items():
        out[f"cost_{name}"] = float(((x_1 - x_0) ** 2).sum())
    (b_0, b_1) = plans()["B"]
    # the two routes of plan B meet where (1 - t) x_0 + t x_1 is equal for both trucks
    d_0, d_1 = float(b_0[0] - b_0[1]), float(b_1[0] - b_1[1])
    out["meet_t"] = d_0 / (d_0 - d_1)
    out["meet_x"] = float((1 - out["meet_t"]) * b_0[0] + out["meet_t"] * b_1[0])
    return out


def draw():
    fig, axes = new_figure(6.4, 2.9, ncols=2, sharey=True)
    t = torch.linspace(0, 1, 2, dtype=torch.float64)  # [2]
    f = facts()
    for ax, (name, (x_0, x_1)) in zip(axes, plans().items()):
        for k, colour in ((0, BLUE), (1, PINK)):
            ax.plot(t, (1 - t) * x_0[k] + t * x_1[k], color=colour, lw=2)
        ax.set_title(f"Plan {name}: cost {f['cost_' + name]:g}", fontsize=11, color=INK)
        ax.set(xlabel="time t", xlim=(0, 1), ylim=(-0.2, 3.2))
        ax.set_xticks([0, 0.5, 1])
    axes[0].set(ylabel="position")
    axes[0].set_yticks([0, 1, 2, 3])
    axes[1].plot([f["meet_t"]], [f["meet_x"]], "o", color=ORANGE, ms=7, zorder=3)
    axes[1].annotate(f"meet at t = {f['meet_t']:g}, x = {f['meet_x']:g}", (f["meet_t"], f["meet_x"]),
                     xytext=(0.55, 0.4), textcoords="data", ha="left", color=INK, fontsize=10)
    axes[0].annotate("", (0.5, 2.0), xytext=(0.5, 1.0), arrowprops={"arrowstyle": "<->", "color": MUTED, "lw": 1})
    axes[0].text(0.55, 0.4, "always 1 apart", color=MUTED, fontsize=10)
    fig.tight_layout()
    return fig
