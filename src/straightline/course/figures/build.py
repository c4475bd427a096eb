"""Build the course's figures: `straightline build-figures [--only NAME ...] [--out DIR]`.

Each figure module's `draw()` returns a matplotlib figure computed from the toolkit; `style.to_svg`
turns it into the deterministic SVG shipped in `svg/NAME.svg`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from . import FIGURES, SVG_DIR

__all__ = ["build", "render"]


def render(name: str) -> str:
    """Figure `name` as SVG text (the bytes `build` writes)."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; accepted: {', '.join(FIGURES)}")
    from .style import to_svg

    module = importlib.import_module(f"{__package__}.{FIGURES[name]}")
    return to_svg(module.draw(), name)


def build(names: list[str] | None = None, out: Path | str | None = None, *, echo=print) -> list[Path]:
    """Write `svg/NAME.svg` (or `out/NAME.svg`) for every figure in `names` (default: all)."""
    directory = Path(out) if out is not None else SVG_DIR
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(FIGURES):
        svg = render(name)
        path = directory / f"{name}.svg"
        path.write_text(svg, encoding="utf-8")
        echo(f"{path}: {len(svg.encode()) / 1024:.1f} KiB")
        written.append(path)
    return written
