"""Chapter 7's two flow-map simulations in Chromium against a real server over the shipped course:
both draw from the API, respond to their controls and to the keyboard."""

from __future__ import annotations

import pytest

from browser_support import BROWSER_MARKS, CANVAS_STATS, STILL_DESKTOP, sim_drawn, sim_ready  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS


@pytest.fixture
def page(open_context, server: ServerProcess):
    pg = open_context(**STILL_DESKTOP).new_page()
    # the few-step simulation comes after Chapter 7's gate: clear it, as a learner would
    answer = {"answer": " ".join(f"word{k}" for k in range(120))}
    assert pg.request.post(f"{server.url}/elements/c7-gate/checkpoint", form=answer, headers={"Accept": "application/json"}).ok
    return pg


def _picture(page, eid: str) -> dict:
    return page.evaluate(CANVAS_STATS, eid)


def test_nfe_panels_draw_and_follow_the_nfe_control_and_the_keyboard(page, server: ServerProcess) -> None:
    eid = "c7-nfe-jumps"
    page.goto(f"{server.url}/chapters/jumping")
    sim_ready(page, eid)
    figure = page.locator(f"#{eid} figure.sim")
    before = _picture(page, eid)
    assert before["std"] > 4
    summary = figure.locator(".sim__summary").inner_text()
    assert "1 network evaluation per sampler" in summary and "MeanFlow (jumps): W2" in summary
    assert figure.get_attribute("data-frame") == "1"  # one jump: start and end, the end shown
    figure.locator("details.sim__data > summary").click()
    assert figure.locator("details.sim__data table tbody tr").count() == 4
    drawn = sim_drawn(page, eid)
    page.locator(f"#{eid}-nfe-4").check()
    sim_ready(page, eid, drawn)
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
    sim_ready(page, eid)
    figure = page.locator(f"#{eid} figure.sim")
    first = _picture(page, eid)
    assert first["std"] > 4
    assert "One jump of the MeanFlow flow map from s lands" in figure.locator(".sim__summary").inner_text()
    # keyboard on the t handle: End is already 1, so step it down three grid steps
    handle_t = page.locator(f"#{eid} .sim__handle--t")
    assert handle_t.get_attribute("role") == "slider" and handle_t.get_attribute("aria-valuenow") == "1"
    handle_t.focus()
    drawn = sim_drawn(page, eid)
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    sim_ready(page, eid, drawn)
    assert handle_t.get_attribute("aria-valuenow") == "0.85"
    assert page.locator(f"#{eid}-t").input_value() == "0.85"  # the slider follows the handle
    assert "at t = 0.85" in figure.locator(".sim__summary").inner_text()
    second = _picture(page, eid)
    assert second["hash"] != first["hash"]
    # drag the s handle to the middle of the bar
    handle_s = page.locator(f"#{eid} .sim__handle--s")
    track = page.locator(f"#{eid} .sim__timebar-track").bounding_box()
    box = handle_s.bounding_box()
    drawn = sim_drawn(page, eid)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + 0.5 * track["width"], track["y"] + track["height"] / 2, steps=5)
    page.mouse.up()
    sim_ready(page, eid, drawn)
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
    drawn = sim_drawn(page, eid)
    page.mouse.click(canvas["x"] + 0.85 * canvas["width"], canvas["y"] + 0.2 * canvas["height"])
    sim_ready(page, eid, drawn)
    picked = page.locator(f"#{eid}-particle").input_value()
    assert picked != "0" and f"Particle {picked} of 60" in figure.locator(".sim__summary").inner_text()
