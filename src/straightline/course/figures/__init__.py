"""The course's static figures: a registry of names, and the shipped SVG of each.

Each figure is computed by a small module of this package from the toolkit's own numbers and
written by `straightline build-figures` (`build.py`, which needs matplotlib: the `figures` extra)
to `svg/NAME.svg`. Reading the registry and the shipped SVG needs neither matplotlib nor torch,
so the course loader can check a `{figure}` block's name at start-up.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FIGURES", "SVG_DIR", "figure_names", "shipped_svg"]

SVG_DIR = Path(__file__).parent / "svg"

#: figure name -> the module of this package whose `draw()` makes it
FIGURES: dict[str, str] = {
    "vp-arc": "arc",
    "two-point-plane": "two_point",
    "two-trucks": "trucks",
    "cfm-pipeline": "pipeline",
    "time-densities": "time_densities",
    "denoiser-one-step": "denoiser",
    "reflow-straightening": "reflow_schematic",
    "mmdit-flux": "mmdit",
    "ddim-grid": "ddim_grid",
    "prediction-dictionary": "dictionary",
}


def figure_names() -> list[str]:
    return list(FIGURES)


def shipped_svg(name: str, directory: Path | None = None) -> str:
    """The shipped SVG text of figure `name`; ValueError naming the accepted names if unknown."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; accepted: {', '.join(FIGURES)}")
    return ((directory or SVG_DIR) / f"{name}.svg").read_text(encoding="utf-8")
