"""The static figures as a learner sees them in Chromium: every figure of a chapter is drawn at a
real size with its alt text and caption, in the light and the dark theme, and its ink follows the
theme (the SVG is inline and its colours are the page's custom properties, which the page's
Content-Security-Policy lets through)."""

from __future__ import annotations

import pytest

from browser_support import BROWSER_MARKS  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS

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


def _walk(browser, base: str, slugs: list[str], scheme: str, width: int) -> dict[str, list[dict]]:
    """The figures measured on each chapter page, in one browser context."""
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    found = {}
    for slug in slugs:
        page.goto(f"{base}/chapters/{slug}")
        found[slug] = page.evaluate(MEASURE)
    context.close()
    assert not errors, errors  # a Content-Security-Policy refusal shows here
    return found


def _figures(browser, base: str, slug: str, scheme: str, width: int) -> list[dict]:
    return _walk(browser, base, [slug], scheme, width)[slug]


@pytest.mark.parametrize("width", [1280, 375])
def test_figures_render_with_alt_text_and_a_theme_coloured_ink(browser, server: ServerProcess, width: int) -> None:
    light = _figures(browser, server.url, "optimal-transport", "light", width)
    dark = _figures(browser, server.url, "optimal-transport", "dark", width)
    assert [f["name"] for f in light] == ["two-trucks", "two-point-plane"]
    for theme in (light, dark):
        for fig in theme:
            assert fig["width"] > 300 and fig["height"] > 120, fig
            assert fig["role"] == "img" and len(fig["label"].split()) >= 10 and fig["caption"], fig
            assert fig["ink"] == fig["page"], fig  # the figure's text is the page's text colour
            assert fig["lineFill"] == "none", fig  # the SVG's own attributes apply (lines are not filled)
    assert light[0]["ink"] != dark[0]["ink"]


def test_every_chapters_figures_are_drawn_in_both_themes(browser, server: ServerProcess, real_course) -> None:
    expected = {c.slug: [e.fields["figure"] for e in c.elements if e.type == "figure"] for c in real_course.chapters}
    expected = {slug: names for slug, names in expected.items() if names}
    for scheme in ("light", "dark"):
        for slug, found in _walk(browser, server.url, list(expected), scheme, 1280).items():
            assert [f["name"] for f in found] == expected[slug], (slug, scheme)
            for fig in found:
                assert fig["width"] > 400 and fig["height"] > 120 and fig["ink"] == fig["page"], (slug, scheme, fig)
