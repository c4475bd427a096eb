"""Chapter 9's side-by-side simulation on the digits, in a real browser (Chromium) against a real
server: the Data control switches both panels from moons to 8x8 digit images, drawn as tiles
(the canvas's panels are not blank), with each sampler's digit FD in the picture and the text."""

from __future__ import annotations

import pytest

from browser_support import BROWSER_MARKS, sim_ready  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS

EID = "c8-side-by-side"

#: luminance spread and distinct colours inside the middle of each panel (where the 4 x 4 tiles lie)
PANEL_STATS = """(id) => {
  const c = document.querySelector(`#${id} canvas.sim__canvas`);
  const g = c.getContext('2d'), r = window.devicePixelRatio || 1;
  const w = c.width / r, h = c.height / r, wide = w >= 520;
  const rects = wide ? [[0, 0, w / 2, h], [w / 2, 0, w / 2, h]] : [[0, 0, w, h / 2], [0, h / 2, w, h / 2]];
  return rects.map(([x, y, rw, rh]) => {
    const d = g.getImageData(Math.round((x + rw * 0.3) * r), Math.round((y + rh * 0.3) * r),
                             Math.round(rw * 0.4 * r), Math.round(rh * 0.4 * r)).data;
    let s = 0, s2 = 0; const colours = new Set();
    for (let i = 0; i < d.length; i += 4) {
      const v = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      s += v; s2 += v * v; colours.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
    }
    const n = d.length / 4;
    return { std: Math.sqrt(s2 / n - (s / n) ** 2), colours: colours.size };
  });
}"""


@pytest.mark.parametrize("width", [1280, 375])
def test_the_digits_option_draws_digit_images_with_their_fd(open_context, server: ServerProcess, width: int) -> None:
    page = open_context(viewport={"width": width, "height": 900}, reduced_motion="reduce").new_page()
    page.goto(f"{server.url}/chapters/flow-vs-diffusion")
    sim_ready(page, EID)
    page.locator(f"#{EID}-data-digits").check()
    page.wait_for_function(
        "(id) => { const f = document.querySelector(`#${id} figure.sim`); const d = f.player && f.player.data;"
        " return d && d.params.data === 'digits' && f.dataset.state === 'ready' && !f.hasAttribute('aria-busy'); }",
        arg=EID, timeout=90_000)
    page.wait_for_function("(id) => document.querySelector(`#${id} .sim__summary`).textContent.includes('digit images')",
                           arg=EID, timeout=30_000)
    data = page.evaluate("(id) => { const d = document.querySelector(`#${id} figure.sim`).player.data;"
                         " return {shape: d.diff.path.shape, diff: d.diff.quality, flow: d.flowd.quality}; }", EID)
    assert data["shape"][1:] == [16, 8, 8]
    for stats in page.evaluate(PANEL_STATS, EID):  # each panel: tiles of many shades, not an empty panel
        assert stats["std"] > 20 and stats["colours"] > 20, stats
    measure = page.locator(f"#{EID} .sim__measure").text_content()
    assert f"digit FD {data['diff']['fd']:.1f}" in measure and f"digit FD {data['flow']['fd']:.1f}" in measure
    summary = page.locator(f"#{EID} .sim__summary").text_content()
    assert "16 digit images (8 × 8 pixels) start from the same Gaussian noise" in summary
    # back to the moons: particles again (linked views work there)
    page.locator(f"#{EID}-data-moons").check()
    page.wait_for_function("(id) => document.querySelector(`#${id} .sim__summary`).textContent.includes('particles start')",
                           arg=EID, timeout=60_000)
