"""Chapter 7's two flow-map simulations in Chromium against a real server: both draw from the API,
respond to their controls and to the keyboard. The chapter text is written elsewhere, so the
server reads a copy of the shipped chapters with the two directive blocks appended to Chapter 7
(the blocks the lead places in 07-jumping.md)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_web_browser import CHROMIUM, Traffic, _context  # noqa: E402
from test_web_sims_browser import CANVAS_STATS, _drawn, _ready  # noqa: E402
from web_support import ServerProcess, start_server  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"),
]

CHAPTERS = Path(__file__).parents[2] / "src" / "straightline" / "course" / "chapters"
BLOCKS = '''

```{simulation} c7-nfe-jumps
sim: flowmap-nfe
caption: |
  The same Gaussian noise sampled four ways on the two moons, each with the chosen number of
  network evaluations: flow matching and a 2-rectified flow step with Euler, a shortcut model
  and a MeanFlow model jump with their learned flow maps. Each panel reports its W2 to the data.
```

```{simulation} c7-flow-map-arrows
sim: flowmap-jumps
caption: |
  One particle's path under a flow-matching model (solid curve) and the MeanFlow model's jump
  from its point at time s straight to time t; the dashed segment joins where the jump lands
  and where the path is at t. The thin arrows are the same jump for the other particles.
```
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("flowmap-sims")
    content = root / "chapters"
    shutil.copytree(CHAPTERS, content)
    jumping = content / "07-jumping.md"
    jumping.write_text(jumping.read_text(encoding="utf-8") + BLOCKS, encoding="utf-8")
    running = start_server(root / "data", db=f"sqlite:///{root / 'progress.db'}", content_dir=content)
    yield running
    running.kill()


@pytest.fixture
def page(browser):
    traffic = Traffic()
    context = _context(browser, traffic, viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    yield context.new_page()
    context.close()
    traffic.assert_local()


def _picture(page, eid: str) -> dict:
    return page.evaluate(CANVAS_STATS, eid)


def test_nfe_panels_draw_and_follow_the_nfe_control_and_the_keyboard(page, server: ServerProcess) -> None:
    eid = "c7-nfe-jumps"
    page.goto(f"{server.url}/chapters/jumping")
    _ready(page, eid)
    figure = page.locator(f"#{eid} figure.sim")
    before = _picture(page, eid)
    assert before["std"] > 4
    summary = figure.locator(".sim__summary").inner_text()
    assert "1 network evaluation per sampler" in summary and "MeanFlow (jumps): W2" in summary
    assert figure.get_attribute("data-frame") == "1"  # one jump: start and end, the end shown
    figure.locator("details.sim__data > summary").click()
    assert figure.locator("details.sim__data table tbody tr").count() == 4
    drawn = _drawn(page, eid)
    page.locator(f"#{eid}-nfe-4").check()
    _ready(page, eid, drawn)
    assert "4 network evaluations per sampler" in figure.locator(".sim__summary").inner_text()
    after = _picture(page, eid)
    assert after["hash"] != before["hash"] and figure.get_attribute("data-frames") == "5"
    page.locator(f"#{eid} canvas").focus()
    page.keyboard.press("Home")
    assert figure.get_attribute("data-frame") == "0"
    page.keyboard.press("ArrowRight")
    assert figure.get_attribute("data-frame") == "1" and "t = 0.25" in figure.locator(".sim__summary").inner_text()
    assert _picture(page, eid)["hash"] != after["hash"]


def test_jump_handles_drag_and_step_by_keyboard_and_a_click_picks_a_particle(page, server: ServerProcess) -> None:
    eid = "c7-flow-map-arrows"
    page.goto(f"{server.url}/chapters/jumping")
    _ready(page, eid)
    figure = page.locator(f"#{eid} figure.sim")
    first = _picture(page, eid)
    assert first["std"] > 4
    assert "One jump of the MeanFlow flow map from s lands" in figure.locator(".sim__summary").inner_text()
    # keyboard on the t handle: End is already 1, so step it down three grid steps
    handle_t = page.locator(f"#{eid} .sim__handle--t")
    assert handle_t.get_attribute("role") == "slider" and handle_t.get_attribute("aria-valuenow") == "1"
    handle_t.focus()
    drawn = _drawn(page, eid)
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    _ready(page, eid, drawn)
    assert handle_t.get_attribute("aria-valuenow") == "0.85"
    assert page.locator(f"#{eid}-t").input_value() == "0.85"  # the slider follows the handle
    assert "at t = 0.85" in figure.locator(".sim__summary").inner_text()
    second = _picture(page, eid)
    assert second["hash"] != first["hash"]
    # drag the s handle to the middle of the bar
    handle_s = page.locator(f"#{eid} .sim__handle--s")
    track = page.locator(f"#{eid} .sim__timebar-track").bounding_box()
    box = handle_s.bounding_box()
    drawn = _drawn(page, eid)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + 0.5 * track["width"], track["y"] + track["height"] / 2, steps=5)
    page.mouse.up()
    _ready(page, eid, drawn)
    assert handle_s.get_attribute("aria-valuenow") == "0.5"
    assert "at s = 0.50" in figure.locator(".sim__summary").inner_text()
    # s can never pass t: pushing s to the end moves t along
    handle_s.focus()
    page.keyboard.press("End")
    page.wait_for_function(f"() => document.querySelector('#{eid} .sim__handle--t').getAttribute('aria-valuenow') === '1'")
    assert handle_s.get_attribute("aria-valuenow") == "0.95"
    # a click on the picture picks another particle
    assert "Particle 0 of 60" in figure.locator(".sim__summary").inner_text()
    canvas = page.locator(f"#{eid} canvas").bounding_box()
    drawn = _drawn(page, eid)
    page.mouse.click(canvas["x"] + 0.85 * canvas["width"], canvas["y"] + 0.2 * canvas["height"])
    _ready(page, eid, drawn)
    picked = page.locator(f"#{eid}-particle").input_value()
    assert picked != "0" and f"Particle {picked} of 60" in figure.locator(".sim__summary").inner_text()
