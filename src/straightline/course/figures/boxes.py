"""Boxes and arrows for the schematic figures (pipeline, MMDiT, dictionary)."""

from __future__ import annotations

from matplotlib.patches import FancyBboxPatch

from .style import INK, MUTED

__all__ = ["box", "arrow", "blank"]


def blank(ax, width: float, height: float) -> None:
    """An axis without frame or ticks, in box units 0..width x 0..height."""
    ax.set(xlim=(0, width), ylim=(0, height), aspect="equal")
    ax.axis("off")


def box(ax, x: float, y: float, w: float, h: float, text: str, colour: str = INK, *, size: float = 10,
        fill_alpha: float = 0.08) -> None:
    """A rounded box with its lower-left corner at (x, y) and `text` centred in it."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.12", facecolor=colour,
                                alpha=fill_alpha, edgecolor="none"))
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.12", facecolor="none",
                                edgecolor=colour, lw=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, color=INK, linespacing=1.35)


def arrow(ax, start: tuple[float, float], end: tuple[float, float], label: str = "", *, colour: str = MUTED,
          style: str = "->", offset: tuple[float, float] = (0, 0), size: float = 9) -> None:
    ax.annotate("", end, xytext=start, arrowprops={"arrowstyle": style, "color": colour, "lw": 1.2,
                                                   "shrinkA": 0, "shrinkB": 0})
    if label:
        mid = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
        ax.text(*mid, label, ha="center", va="center", fontsize=size, color=INK)
