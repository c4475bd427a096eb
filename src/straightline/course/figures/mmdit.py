"""Chapter 8: an MMDiT block (two streams with their own weights that meet in one joint attention)
and Flux.1's layout, double-stream blocks then single-stream blocks (19 and 38 in the released
models, as the chapter states). A schematic: the boxes are drawn, not computed."""

from __future__ import annotations

from .boxes import arrow, blank, box
from .style import BLUE, GREEN, INK, MUTED, ORANGE, new_figure

__all__ = ["draw", "FLUX_DOUBLE", "FLUX_SINGLE"]

FLUX_DOUBLE, FLUX_SINGLE = 19, 38  # Flux.1 as released by Black Forest Labs (cited in the chapter)


def _block(ax) -> None:
    for x, name, colour in ((0.2, "text tokens", ORANGE), (3.6, "image tokens", BLUE)):
        box(ax, x, 0.2, 2.6, 0.8, name, colour, size=9)
        box(ax, x, 1.5, 2.6, 1.0, "adaLN (t, caption)\nown Q, K, V weights", colour, size=8.5)
        box(ax, x, 4.3, 2.6, 1.0, "own projection\nown MLP", colour, size=8.5)
        arrow(ax, (x + 1.3, 1.0), (x + 1.3, 1.5))
        arrow(ax, (x + 1.3, 2.5), (x + 1.3, 3.0))
        arrow(ax, (x + 1.3, 3.8), (x + 1.3, 4.3))
        arrow(ax, (x + 1.3, 5.3), (x + 1.3, 5.8))
    box(ax, 0.2, 3.0, 6.0, 0.8, "joint attention over [text ; image]", GREEN, size=9)
    ax.text(3.2, 6.2, "MMDiT block", ha="center", fontsize=11, color=INK, weight="bold")


def _flux(ax) -> None:
    x = 7.6
    box(ax, x, 0.2, 2.8, 0.8, "text + image tokens", MUTED, size=9)
    box(ax, x, 1.5, 2.8, 1.4, f"double-stream\nMMDiT block\n× {FLUX_DOUBLE}", GREEN, size=9)
    box(ax, x, 3.4, 2.8, 1.9, f"single-stream block\n× {FLUX_SINGLE}\none sequence,\nshared weights", BLUE, size=9)
    arrow(ax, (x + 1.4, 1.0), (x + 1.4, 1.5))
    arrow(ax, (x + 1.4, 2.9), (x + 1.4, 3.4), "concatenate", offset=(1.15, 0))
    arrow(ax, (x + 1.4, 5.3), (x + 1.4, 5.8))
    ax.text(x + 1.4, 6.2, "Flux.1 layout", ha="center", fontsize=11, color=INK, weight="bold")
    arrow(ax, (6.5, 2.2), (x - 0.1, 2.2), style="<-", colour=MUTED)


def draw():
    fig, ax = new_figure(7.0, 4.0)
    blank(ax, 11.6, 6.6)
    _block(ax)
    _flux(ax)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    return fig
