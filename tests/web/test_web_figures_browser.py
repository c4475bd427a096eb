"""The static figures as a learner sees them in Chromium: every figure of a chapter is drawn at a
real size with its alt text and caption, in the light and the dark theme, and its ink follows the
theme (the SVG is inline and its colours are the page's custom properties, which the page's
Content-Security-Policy lets through)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from web_support import ServerProcess, start_server  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"),
]

MEASURE = """() => [...document.querySelectorAll('figure.fig')].map(fig => {
  const svg = fig.querySelector('svg');
  const box = svg.getBoundingClientRect();
  const text = svg.querySelector('text');
  const line = svg.querySelector('path[stroke="var(--fig-blue)"], path[stroke="var(--fig-orange)"]');
  return {
    name: fig.dataset.figure, width: box.width, height: box.height,
    role: svg.getAttribute('role'), label: svg.getAttribute('aria-label') || '',
    caption: fig.querySelector('figcaption').textContent.trim(),
    ink: getComputedStyle(text).fill, page: getComputedStyle(document.body).color,
    lineFill: line ? getComputedStyle(line).fill : 'none',
  };
})"""


@pytest.fixture(scope="module")
def figure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("figure-server")
    server = start_server(data, db=f"sqlite:///{data / 'progress.db'}")
    yield server
    server.kill()


def _figures(browser, base: str, slug: str, scheme: str, width: int) -> list[dict]:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/chapters/{slug}")
    found = page.evaluate(MEASURE)
    context.close()
    assert not errors, errors  # a Content-Security-Policy refusal shows here
    return found


@pytest.mark.parametrize("width", [1280, 375])
def test_figures_render_with_alt_text_and_a_theme_coloured_ink(browser, figure_server: ServerProcess, width: int) -> None:
    light = _figures(browser, figure_server.url, "optimal-transport", "light", width)
    dark = _figures(browser, figure_server.url, "optimal-transport", "dark", width)
    assert [f["name"] for f in light] == ["two-trucks", "two-point-plane"]
    for theme in (light, dark):
        for fig in theme:
            assert fig["width"] > 300 and fig["height"] > 120, fig
            assert fig["role"] == "img" and len(fig["label"].split()) >= 10 and fig["caption"], fig
            assert fig["ink"] == fig["page"], fig  # the figure's text is the page's text colour
            assert fig["lineFill"] == "none", fig  # the SVG's own attributes apply (lines are not filled)
    assert light[0]["ink"] != dark[0]["ink"]
