"""The course's static figures: the builder rebuilds the shipped SVG byte for byte, the SVG is fit
to inline (theme colours only, no inline styles, ids of its own, small), every figure sits in its
chapter with alt text and a caption whose numbers are the figure's own, and a {figure} block
without alt text or with an unknown name stops the course from loading."""

from __future__ import annotations

import html
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from straightline import cli
from straightline.course import figures
from straightline.course.content import ContentError, load_course

FIXTURES = Path(__file__).parents[1] / "web" / "fixtures" / "course"
COURSE = load_course()
SVG_NS = "{http://www.w3.org/2000/svg}"

#: where each figure belongs (chapters found by slug)
PLACES = {
    "vp-arc": "paths", "two-point-plane": "optimal-transport", "two-trucks": "optimal-transport",
    "cfm-pipeline": "cfm", "time-densities": "training", "denoiser-one-step": "sampling",
    "reflow-straightening": "reflow", "mmdit-flux": "sd3-flux", "ddim-grid": "flow-vs-diffusion",
    "prediction-dictionary": "flow-vs-diffusion",
}


def _build():
    pytest.importorskip("matplotlib", reason="the figures extra: pip install 'straightline[figures]'")
    from straightline.course.figures import build

    return build


def _placed() -> dict[str, tuple[str, object]]:
    return {e.fields["figure"]: (c.slug, e) for c in COURSE.chapters for e in c.elements if e.type == "figure"}


def test_rebuilding_the_cheap_figures_twice_gives_the_shipped_bytes(tmp_path: Path) -> None:
    build = _build()
    for name in ("two-trucks", "cfm-pipeline"):
        first, second = build.render(name), build.render(name)
        assert first == second
        assert first.encode() == (figures.SVG_DIR / f"{name}.svg").read_bytes(), f"{name}: run straightline build-figures"


def test_the_cli_rebuilds_every_shipped_figure_unchanged(tmp_path: Path, capsys) -> None:
    _build()
    assert cli.main(["build-figures", "--out", str(tmp_path)]) == 0
    for name in figures.FIGURES:
        assert (tmp_path / f"{name}.svg").read_bytes() == (figures.SVG_DIR / f"{name}.svg").read_bytes(), name
    assert "two-trucks.svg" in capsys.readouterr().out


def test_the_cli_names_the_accepted_figures_for_an_unknown_one(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["build-figures", "--only", "two-truck"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "'two-truck'" in err and "two-trucks" in err and "vp-arc" in err


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_each_shipped_svg_draws_with_theme_colours_only_and_inlines_safely(name: str) -> None:
    text = figures.shipped_svg(name)
    assert len(text.encode()) < 40_000
    root = ET.fromstring(text)
    assert root.tag == f"{SVG_NS}svg" and root.get("viewBox") and root.get("width") is None
    assert not re.search(r"#[0-9a-fA-F]{6}\b|rgb\(", text), "a colour outside the theme's custom properties"
    assert " style=" not in text and "<style" not in text  # the page's CSP ignores inline styles
    colours = {v for el in root.iter() for k, v in el.attrib.items() if k in ("fill", "stroke") and v != "none"}
    assert colours and all(re.fullmatch(r"var\(--fig-[a-z]+\)", c) for c in colours), colours
    assert all(el.get("fill") for el in root.iter(f"{SVG_NS}text")), "text without a theme colour"
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert all(i.startswith(f"fig-{name}-") for i in ids) and len(ids) == len(set(ids))


def test_every_figure_is_in_its_chapter_with_alt_text_and_a_caption() -> None:
    placed = _placed()
    assert set(placed) == set(figures.FIGURES) and len(placed) >= 10
    for name, (slug, element) in placed.items():
        assert slug == PLACES[name], name
        assert len(element.fields["alt"].split()) >= 10 and element.html["caption"].strip(), name
        svg = element.html["svg"]
        assert svg.startswith('<svg role="img" aria-label="') and f"<title>{element.html['alt'][:20]}" in svg


def _caption(name: str) -> str:
    """The caption's text without tags or spaces (MathML splits a sign from its number)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", _placed()[name][1].html["caption"]))
    return "".join(text.split())


def test_the_numbers_in_captions_are_the_figures_own() -> None:
    from straightline.course.figures import ddim_grid, denoiser, dictionary, pipeline, reflow_schematic
    from straightline.course.figures import time_densities, trucks, two_point

    assert f"{two_point.facts()['turn_t']:.2f}" in _caption("two-point-plane")
    t = trucks.facts()
    assert all(f"{t[k]:g}" in _caption("two-trucks") for k in ("cost_A", "cost_B", "meet_t", "meet_x"))
    p = pipeline.facts()
    assert "0.875" in _caption("cfm-pipeline") and f"{p['loss']:g}" in _caption("cfm-pipeline")
    d = time_densities.facts()
    assert f"{d['Z']:.1f}" in _caption("time-densities") and f"{d['end_heavy_peak']:.1f}" in _caption("time-densities")
    landings = [f"{x:.2f}".replace("-", "−") for x in denoiser.facts()["landings_from_06"]]
    assert all(x in _caption("denoiser-one-step") for x in landings)
    r = reflow_schematic.facts()
    assert f"cross{r['crossings_independent']}times" in _caption("reflow-straightening") and r["crossings_reflow"] == 0
    g = ddim_grid.facts()
    assert all(f"{g[k]:.2f}"[:4] in _caption("ddim-grid") for k in ("linear_last", "cosine_last"))
    c = dictionary.facts()
    assert all(f"{c[k]:.3f}".replace("-", "−") in _caption("prediction-dictionary") for k in ("x1", "noise", "score"))
    assert c["score"] == pytest.approx(c["score_oracle"], abs=1e-9)


FIGURE_BLOCK = """
```{figure} a-figure
figure: two-trucks
alt: |
  Two panels of position against time: parallel routes, and routes that cross.
caption: |
  The two trucks.
```
"""


def _course_with(tmp_path: Path, block: str) -> tuple[Path, int]:
    content = tmp_path / "chapters"
    shutil.copytree(FIXTURES, content)
    path = content / "00-alpha.md"
    text = path.read_text()
    at = text.index("```{recap}")  # before the chapter's recap and sources, which must end it
    path.write_text(text[:at] + block + "\n" + text[at:])
    return path, text[:at].count("\n") + block.index("```") + 1


def test_a_figure_block_loads_and_renders_its_svg(tmp_path: Path) -> None:
    path, _ = _course_with(tmp_path, FIGURE_BLOCK)
    element = load_course(path.parent).elements["a-figure"]
    assert 'data-figure="two-trucks"' in element.html["svg"]
    assert element.html["alt"].startswith("Two panels")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("alt: |\n  Two panels of position against time: parallel routes, and routes that cross.\n", "",
     "lacks ['alt']"),
    ("alt: |\n  Two panels of position against time: parallel routes, and routes that cross.\n", 'alt: "  "\n',
     "alt must be non-empty text"),
    ("figure: two-trucks", "figure: three-trucks", "unknown figure 'three-trucks' (accepted: vp-arc, "),
])
def test_a_bad_figure_block_stops_loading_with_file_line_and_what_is_accepted(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path, line = _course_with(tmp_path, FIGURE_BLOCK.replace(old, new))
    with pytest.raises(ContentError) as info:
        load_course(path.parent)
    assert info.value.path == path and info.value.line == line, str(info.value)
    assert message in info.value.message
