"""Screenshots of the course pages in Chromium, for looking at them as a learner would.

    python scripts/screenshots.py BASE_URL OUT_DIR [--pages /,/chapters/paths,...] [--full]

Takes every page at 1280 px and 360 px wide, light and dark, into OUT_DIR/<name>-<width>-<scheme>.png.
Without --pages: the home page, the progress page and every chapter.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

from headless_chromium import CHROMIUM, CHROMIUM_ARGS  # beside this script


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", default=None)
    parser.add_argument("--full", action="store_true", help="whole page, not just the first screen")
    parser.add_argument("--tiles", action="store_true", help="the whole page as a series of screen-sized images")
    parser.add_argument("--widths", default="1280,360")
    parser.add_argument("--schemes", default="light,dark")
    args = parser.parse_args(argv)
    base = args.base.rstrip("/")
    if args.pages:
        pages = args.pages.split(",")
    else:
        home = urllib.request.urlopen(base + "/").read().decode()
        pages = ["/", "/progress", *dict.fromkeys(re.findall(r'href="(/chapters/[a-z0-9-]+)"', home))]
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context0 = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        for width in [int(w) for w in args.widths.split(",")]:
            for scheme in args.schemes.split(","):
                page = context0.new_page()
                page.set_viewport_size({"width": width, "height": 900 if width > 500 else 780})
                page.emulate_media(color_scheme=scheme)
                for path in pages:
                    page.goto(base + path)
                    name = path.strip("/").replace("/", "-") or "home"
                    if args.tiles:
                        vp = page.viewport_size
                        height = page.evaluate("document.documentElement.scrollHeight")
                        for k in range(0, (height + vp["height"] - 1) // vp["height"]):
                            clip = {"x": 0, "y": k * vp["height"], "width": vp["width"],
                                    "height": min(vp["height"], height - k * vp["height"])}
                            page.screenshot(path=str(args.out / f"{name}-{width}-{scheme}-{k:02d}.png"),
                                            full_page=True, clip=clip)
                    else:
                        page.screenshot(path=str(args.out / f"{name}-{width}-{scheme}.png"), full_page=args.full)
                page.close()
        context0.close()
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
