"""How the project starts Debian's Chromium headless: where it is and the arguments it gets.

One list for everything that drives Chromium: scripts/screenshots.py imports it from beside it, and
the browser tests (tests/web/browser_support.py) put this folder on their path to import it. It lives
here, not in the package, because the course itself never starts a browser; and scripts never import
tests/. The arguments keep a test or screenshot run off the network (no sync, updates, QUIC or
background requests) and let it run as root in a container (no sandbox) without a GPU."""

from __future__ import annotations

from pathlib import Path

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
