"""What the Chromium tests share: where Chromium is and how it is started, the record of a page's
requests and console errors, a browser context that records them, a picture's contrast, and how a
simulation's canvas is awaited and measured. (The fixtures built on these are in conftest.py.)"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "scripts"))
from headless_chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402,F401 - shared with scripts/screenshots.py


# a browser test module's marks: `pytestmark = BROWSER_MARKS` (plus its own)
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"),
]

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
STILL_DESKTOP = {**DESKTOP, "reduced_motion": "reduce"}  # nothing plays by itself

# a simulation's canvas: the contrast of its pixels (std of the luma) and a hash of them
CANVAS_STATS = """(id) => {
  const c = document.querySelector(`#${id} canvas.sim__canvas`);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0, s2 = 0, h = 0;
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    s += y; s2 += y * y; h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
  }
  const n = d.length / 4;
  return { std: Math.sqrt(s2 / n - (s / n) ** 2), hash: h };
}"""


class Traffic:
    """Every request the pages make, and every console error."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []

    def assert_local(self) -> None:
        assert self.urls, "no requests recorded"
        outside = [u for u in self.urls if urlsplit(u).scheme not in ("data", "about", "blob") and urlsplit(u).hostname != "127.0.0.1"]
        assert outside == [], f"requests left 127.0.0.1: {outside}"
        # a refused answer is answered 422/409 on purpose; Chromium logs any 4xx fetch as an error
        expected = re.compile(r"Failed to load resource: the server responded with a status of (409|422) ")
        errors = [e for e in self.errors if not expected.match(e)]
        assert errors == [], f"console errors: {errors}"


def new_context(browser, traffic: Traffic, **options):
    context = browser.new_context(**options)
    context.on("request", lambda request: traffic.urls.append(request.url))
    context.on("console", lambda msg: traffic.errors.append(msg.text) if msg.type == "error" else None)
    return context


def pixel_stddev(browser, png: bytes) -> float:
    scratch = browser.new_page()
    data = base64.b64encode(png).decode()
    value = scratch.evaluate(
        """async (data) => {
          const img = new Image(); img.src = 'data:image/png;base64,' + data; await img.decode();
          const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
          const g = c.getContext('2d'); g.drawImage(img, 0, 0);
          const px = g.getImageData(0, 0, c.width, c.height).data;
          let n = 0, s = 0, s2 = 0;
          for (let i = 0; i < px.length; i += 4) { const y = 0.299*px[i] + 0.587*px[i+1] + 0.114*px[i+2]; s += y; s2 += y*y; n++; }
          const m = s / n; return [m, Math.sqrt(s2 / n - m * m)];
        }""",
        data,
    )
    scratch.close()
    return value


def sim_ready(page, eid: str, drawn_after: int = 0, timeout: float = 90_000) -> None:
    """Waits until the simulation `eid` is ready, idle, and has drawn more than `drawn_after` frames."""
    page.wait_for_function(
        """([id, after]) => { const f = document.querySelector(`#${id} figure.sim`);
             return f && f.dataset.state === 'ready' && Number(f.dataset.drawn || 0) > after && !f.hasAttribute('aria-busy'); }""",
        arg=[eid, drawn_after], timeout=timeout,
    )
    page.wait_for_timeout(50)  # the frame after the last one drawn


def sim_drawn(page, eid: str) -> int:
    """How many frames the simulation `eid` has drawn."""
    return int(page.locator(f"#{eid} figure.sim").get_attribute("data-drawn") or 0)
