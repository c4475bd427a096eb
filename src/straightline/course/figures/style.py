"""The figures' shared look and their deterministic, theme-following SVG.

Figures draw only with the palette below. `to_svg` saves a matplotlib figure with a fixed hash
salt, no date and text kept as text, then rewrites it for inlining into a page: each palette
colour becomes a CSS custom property (`var(--fig-ink)`, ... defined in app.css for the light and
the dark theme), ids get the figure's name as prefix (several figures share a page), style attributes become
presentation attributes (the page's Content-Security-Policy ignores inline styles), matplotlib's
group ids, metadata and page-wide style rule go, and coordinates are rounded to 0.01.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["INK", "MUTED", "GRID", "BLUE", "ORANGE", "PINK", "GREEN", "PALETTE", "new_figure", "to_svg"]

# Distinct stand-in colours (close to the light theme's), each mapped to one CSS custom property.
INK, MUTED, GRID = "#1d2126", "#59616c", "#c9c3b7"
BLUE, ORANGE, PINK, GREEN = "#0a6799", "#9a4d00", "#a8205f", "#2b7424"
PALETTE: dict[str, str] = {
    INK: "--fig-ink", MUTED: "--fig-muted", GRID: "--fig-grid",
    BLUE: "--fig-blue", ORANGE: "--fig-orange", PINK: "--fig-pink", GREEN: "--fig-green",
}

RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "straightline-figures",
    "svg.image_inline": True,
    "font.family": "DejaVu Sans",
    "font.size": 11,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "text.color": INK,
    "lines.linewidth": 1.8,
    "legend.frameon": False,
    "path.simplify": True,
    "path.simplify_threshold": 0.5,
}


def new_figure(width: float, height: float, **subplots) -> tuple[Figure, object]:
    """A figure of `width` x `height` inches (72 SVG units per inch) with the figures' style."""
    plt.rcParams.update(RC)
    fig, axes = plt.subplots(figsize=(width, height), **subplots)
    return fig, axes


_NUMBER = re.compile(r"-?\d+\.\d{3,}")
_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


def _round(match: re.Match) -> str:
    text = f"{float(match.group(0)):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _colour(name: str):
    def replace(match: re.Match) -> str:
        hexcode = match.group(0).lower()
        if hexcode not in PALETTE:
            raise ValueError(f"figure {name!r} uses colour {hexcode} outside the palette {sorted(PALETTE)}")
        return f"var({PALETTE[hexcode]})"

    return replace


def _strip(svg: str) -> str:
    """Drop the XML prolog, metadata, the page-wide `*` rule and matplotlib's group ids."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"\s*<style type=\"text/css\">.*?</style>", "", svg, flags=re.S)
    svg = re.sub(r"\s*<defs>\s*</defs>", "", svg)
    svg = re.sub(r"\s*<g\b[^>]*/>", "", svg)  # empty self-closed groups
    svg = re.sub(r'<g id="[^"]*">', "<g>", svg)
    svg = re.sub(r"\s*<g>\s*</g>", "", svg)
    return re.sub(r" \n(?=[LMCQz])", " ", svg)


_G_TAG = re.compile(r"<g\b[^>]*>|</g>")


def _unwrap_groups(svg: str) -> str:
    """Drop every attribute-less <g> and its matching </g> (they group nothing the page needs)."""
    out, stack, pos = [], [], 0
    for m in _G_TAG.finditer(svg):
        out.append(svg[pos:m.start()])
        pos = m.end()
        if m.group(0) == "</g>":
            if stack.pop():
                out.append("</g>")
        else:
            keep = m.group(0) != "<g>"
            stack.append(keep)
            if keep:
                out.append(m.group(0))
    out.append(svg[pos:])
    return "".join(out)


def _compact(svg: str) -> str:
    """No invisible background rectangles, no zero rotations, no indentation."""
    svg = re.sub(r'<path d="[^"]*"\s*style="fill: none"/>', "", svg)
    svg = re.sub(r' transform="rotate\(-?0 [^"]*\)"', "", svg)
    svg = _unwrap_groups(svg)
    svg = re.sub(r"\s*<defs>\s*</defs>", "", svg)
    return "\n".join(line.strip() for line in svg.splitlines() if line.strip())


#: the CSS properties matplotlib writes, all of them SVG presentation attributes
_PRESENTATION = {"fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
                 "stroke-linejoin", "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity",
                 "font-size", "font-family", "font-weight", "font-style", "text-anchor", "clip-path"}
_STYLE = re.compile(r' style="([^"]*)"')


def _as_attributes(match: re.Match) -> str:
    """style="a: b; c: d" as a="b" c="d": the page's Content-Security-Policy ignores style attributes."""
    out = []
    for declaration in filter(None, (d.strip() for d in match.group(1).split(";"))):
        prop, value = (part.strip() for part in declaration.split(":", 1))
        if prop not in _PRESENTATION:
            raise ValueError(f"SVG style property {prop!r} has no presentation attribute (known: {sorted(_PRESENTATION)})")
        out.append(f' {prop}="{value}"')
    return "".join(out)


def _root(svg: str, name: str) -> str:
    """The root element: viewBox only (the page sizes it), the figure's name, one stroke style."""
    head, rest = svg.split(">", 1)
    box = re.search(r'viewBox="([^"]*)"', head).group(1)
    root = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{box}" class="fig__svg" data-figure="{name}" '
            'stroke-linejoin="round" stroke-linecap="butt">')
    return root + rest.replace("xlink:href", "href")


def to_svg(fig: Figure, name: str) -> str:
    """The figure as deterministic SVG text, rewritten for inlining (see the module's docstring)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", transparent=True, metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = _root(_compact(_strip(buf.getvalue())), name)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="fig-{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#fig-{name}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#fig-{name}-\1"', svg)
    svg = svg.replace("font-family: 'DejaVu Sans'", "font-family: 'DejaVu Sans', Verdana, sans-serif")
    svg = re.sub(r'="[^"]*"', lambda m: _NUMBER.sub(_round, m.group(0)), svg)  # attributes, not text
    svg = _STYLE.sub(_as_attributes, _HEX.sub(_colour(name), svg))
    svg = svg.replace("<text>", '<text fill="var(--fig-ink)">')  # a mathtext line: its tspans carry their own
    return svg.rstrip() + "\n"
