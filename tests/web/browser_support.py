"""What the Chromium tests share: where Chromium is and how it is started, the record of a page's
requests and console errors, a browser context that records them, and a picture's contrast."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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
