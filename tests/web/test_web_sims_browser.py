"""The simulations in a real browser (Playwright driving Debian's Chromium) against a real server
process: every simulation draws a non-blank canvas from the API; moving a control redraws it;
the text summary and the data table exist; the keyboard plays, pauses and steps; a shared URL
restores a configuration; live training streams snapshots and stops when the page closes;
reduced motion means no autoplay; without JavaScript the caption and a note remain."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from browser_support import BROWSER_MARKS, CANVAS_STATS, DESKTOP, STILL_DESKTOP, sim_drawn, sim_ready  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS

# chapter slug -> (element id, how to change one control so the picture must change)
SIMS = {
    "paths": [("c0-particles", ("select", "dataset", "moons"))],
    "cnf": [("c1-digit-emerging", ("select", "label", "3")), ("c1-log-density", ("select", "dataset", "two_clusters"))],
    "optimal-transport": [("c2-curved-vs-straight", ("radio", "coupling", "exact_ot"))],
    "cfm": [("c3-mixture-oracle", ("key", None, "ArrowRight"))],
    "training": [("c4-velocity-field", ("select", "dataset", "two_clusters")), ("c4-live-training", ("select", "dataset", "draw"))],
    "sampling": [("c5-euler-steps", ("range", "steps", "2")), ("c5-solver-orders", ("select", "dataset", "two_clusters")),
                 ("c5-euler-faults", ("check", "faults", "curved-velocity"))],
    "reflow": [("c6-reflow-straightening", ("range", "round", "3"))],
    "sd3-flux": [("c7-guided-digits", ("range", "w", "4"))],
    "curved-spaces": [("c7-rotation-flow", ("range", "steps", "3"))],
    "flow-vs-diffusion": [("c8-side-by-side", ("radio", "scale", "ddpm"))],
}

# the predictions that hold these simulations back until a guess is committed (tests/web/
# test_web_manipulate_browser.py tests them); this learner commits them first
PREDICTIONS = {"c2-predict-ot": "smaller", "c4-predict-field": "one-point", "c5-predict-one-step": "0,0", "c6-predict-floor": "1"}


@pytest.fixture
def page(open_context, server: ServerProcess):
    # reduced motion: nothing plays by itself, so every picture is the one the test asks for
    pg = open_context(**STILL_DESKTOP).new_page()
    for eid, guess in PREDICTIONS.items():
        assert pg.request.post(f"{server.url}/elements/{eid}/predict", form={"guess": guess}).ok
    return pg


def _change(page, eid: str, how: tuple) -> None:
    kind, name, value = how
    if kind == "select":
        page.locator(f"#{eid}-{name}").select_option(value)
    elif kind == "radio":
        page.locator(f"#{eid}-{name}-{value}").check()
    elif kind == "check":
        page.locator(f"#{eid}-{name}-{value}").check()
    elif kind == "range":
        page.locator(f"#{eid}-{name}").evaluate(
            "(input, v) => { input.value = v; input.dispatchEvent(new Event('input', {bubbles: true})); }", value)
    elif kind == "key":
        page.locator(f"#{eid} canvas.sim__canvas").focus()
        page.keyboard.press(value)


@pytest.mark.parametrize("slug", list(SIMS))
def test_each_simulation_draws_changes_and_describes_itself(page, server: ServerProcess, slug: str) -> None:
    page.goto(f"{server.url}/chapters/{slug}")
    for eid, how in SIMS[slug]:
        sim_ready(page, eid)
        figure = page.locator(f"#{eid} figure.sim")
        before = page.evaluate(CANVAS_STATS, eid)
        assert before["std"] > 4, f"{eid}: the canvas is blank ({before})"
        assert figure.locator(".sim__caption").inner_text().strip()
        summary = figure.locator(".sim__summary").inner_text()
        assert len(summary) > 40, (eid, summary)
        assert page.locator(f"#{eid} canvas").get_attribute("aria-describedby") == f"{eid}-summary"
        # the data table, for screen readers and the curious
        figure.locator("details.sim__data > summary").click()
        rows = figure.locator("details.sim__data table tbody tr")
        if eid != "c4-live-training":
            rows.nth(1).wait_for(state="attached", timeout=10_000)  # the table fills on the (async) toggle event
            assert rows.count() >= 2, eid
        else:  # nothing trained yet: one row that says so, not an empty table
            rows.first.wait_for(state="attached", timeout=10_000)
            assert rows.count() == 1 and "No snapshots yet" in rows.first.inner_text(), rows.first.inner_text()
        drawn = sim_drawn(page, eid)
        _change(page, eid, how)
        sim_ready(page, eid, drawn)
        after = page.evaluate(CANVAS_STATS, eid)
        assert after["hash"] != before["hash"], f"{eid}: changing {how} did not change the picture"
        assert after["std"] > 4


def test_keyboard_plays_pauses_and_steps(page, server: ServerProcess) -> None:
    page.goto(f"{server.url}/chapters/paths")
    eid = "c0-particles"
    sim_ready(page, eid)
    figure = page.locator(f"#{eid} figure.sim")
    assert figure.get_attribute("data-frame") == "0"  # reduced motion: no autoplay
    time_shown = figure.locator(".sim__time")
    assert time_shown.inner_text() == "t = 0.00"
    canvas = figure.locator("canvas")
    canvas.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert figure.get_attribute("data-frame") == "2"
    assert time_shown.inner_text() == "t = 0.04"  # 50 steps: t moves by 0.02 a step
    expect(figure.locator(".sim__summary")).to_contain_text("t = 0.04")  # the text follows (it may lag a frame)
    page.keyboard.press("ArrowLeft")
    assert figure.get_attribute("data-frame") == "1"
    page.keyboard.press("End")
    assert time_shown.inner_text() == "t = 1.00"
    page.keyboard.press("Home")
    page.keyboard.press("Space")
    assert figure.get_attribute("data-playing") == "true"
    assert figure.locator("button[data-act=play]").get_attribute("aria-label") == "Pause"
    page.wait_for_function("() => Number(document.querySelector('#c0-particles figure').dataset.frame) >= 3")
    page.keyboard.press("Space")
    assert figure.get_attribute("data-playing") == "false"
    stopped = figure.get_attribute("data-frame")
    page.wait_for_timeout(400)
    assert figure.get_attribute("data-frame") == stopped  # paused means paused
    assert int(stopped) >= 3
    # the scrubber is a labelled range whose value reads as time
    scrub = figure.locator("input.sim__scrub")
    assert scrub.get_attribute("aria-label") == "Time" and scrub.get_attribute("aria-valuetext").startswith("t = ")


def test_a_shared_url_restores_the_configuration(page, server: ServerProcess) -> None:
    eid = "c5-euler-steps"
    page.goto(f"{server.url}/chapters/sampling")
    sim_ready(page, eid)
    drawn = sim_drawn(page, eid)
    page.locator(f"#{eid}-dataset").select_option("two_clusters")
    sim_ready(page, eid, drawn)
    drawn = sim_drawn(page, eid)
    page.locator(f"#{eid} .sim__seed button").click()
    sim_ready(page, eid, drawn)
    page.locator(f"#{eid} canvas").focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    shared = page.evaluate("location.href")
    assert "sim=c5-euler-steps" in shared and "dataset=two_clusters" in shared and "seed=1" in shared and "frame=1" in shared
    assert page.locator(f"#{eid} a.sim__link").get_attribute("href") in shared
    picture = page.evaluate(CANVAS_STATS, eid)

    fresh = page.context.new_page()
    fresh.goto(f"{server.url}/chapters/sampling#sim={eid}&steps=20&dataset=two_clusters&seed=1&frame=5")
    sim_ready(fresh, eid)
    figure = fresh.locator(f"#{eid} figure.sim")
    assert fresh.locator(f"#{eid}-steps").input_value() == "20"
    assert fresh.locator(f"#{eid}-dataset").input_value() == "two_clusters"
    assert figure.locator(".sim__seed output").inner_text() == "seed 1"
    assert figure.get_attribute("data-frame") == "5"
    assert "20 Euler steps" in figure.locator(".sim__summary").inner_text()
    assert "t = 0.25" in figure.locator(".sim__summary").inner_text()

    fresh.goto(shared)  # the URL the first page wrote: the same picture
    fresh.reload()
    sim_ready(fresh, eid)
    assert fresh.evaluate(CANVAS_STATS, eid)["hash"] == picture["hash"]
    # a hash that names unknown values is ignored, not obeyed
    fresh.goto(f"{server.url}/chapters/sampling#sim={eid}&steps=5000&dataset=nonsense")
    fresh.reload()
    sim_ready(fresh, eid)
    assert fresh.locator(f"#{eid}-steps").input_value() == "10"
    fresh.close()


def test_live_training_streams_and_stops_when_the_page_closes(open_context, server: ServerProcess) -> None:
    context = open_context(**STILL_DESKTOP)
    pg = context.new_page()
    eid = "c4-live-training"
    pg.goto(f"{server.url}/chapters/training")
    sim_ready(pg, eid)
    figure = pg.locator(f"#{eid} figure.sim")
    pg.locator(f"#{eid}-steps").select_option("3000")
    before = pg.evaluate(CANVAS_STATS, eid)
    figure.get_by_role("button", name="Start training").click()
    pg.wait_for_function(f"() => Number(document.querySelector('#{eid} figure').dataset.snapshots || 0) >= 4", timeout=120_000)
    assert figure.get_attribute("data-live-status") == "running"
    assert pg.evaluate(CANVAS_STATS, eid)["hash"] != before["hash"]
    summary = figure.locator(".sim__summary").inner_text()
    assert summary.startswith("Training on two moons: step") and "loss" in summary
    job = figure.get_attribute("data-job")
    assert context.request.get(f"{server.url}/api/sims/live-training/{job}").json()["state"] == "running"
    pg.close()  # the page goes away: its stream closes, and the server cancels the job
    deadline = time.monotonic() + 30
    state = None
    while time.monotonic() < deadline:
        state = context.request.get(f"{server.url}/api/sims/live-training/{job}").json()
        if state["state"] != "running":
            break
        time.sleep(0.2)
    assert state["state"] == "cancelled" and state["steps_done"] < 3000, state


def test_stop_button_and_drawn_points(page, server: ServerProcess) -> None:
    eid = "c4-live-training"
    page.goto(f"{server.url}/chapters/training")
    sim_ready(page, eid)
    figure = page.locator(f"#{eid} figure.sim")
    page.locator(f"#{eid}-dataset").select_option("draw")
    figure.get_by_role("button", name="Start training").click()
    assert "Draw at least 8 points" in figure.locator(".sim__summary").inner_text()
    box = figure.locator("canvas").bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(30):
        page.mouse.move(x0 + 6 * k, y0 + 4 * k)
    page.mouse.up()
    assert "points you drew" in figure.locator(".sim__summary").inner_text()
    figure.get_by_role("button", name="Start training").click()
    page.wait_for_function(f"() => Number(document.querySelector('#{eid} figure').dataset.snapshots || 0) >= 2", timeout=120_000)
    figure.get_by_role("button", name="Stop").click()
    page.wait_for_function(f"() => document.querySelector('#{eid} figure').dataset.liveStatus === 'stopped'")
    # the numbers behind the loss curve: one table row per snapshot, filled when the table is opened
    page.locator(f"#{eid} details.sim__data > summary").click()
    snapshots = int(figure.get_attribute("data-snapshots"))
    assert figure.locator("details.sim__data tbody tr").count() == snapshots >= 2
    job = figure.get_attribute("data-job")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = page.context.request.get(f"{server.url}/api/sims/live-training/{job}").json()["state"]
        if state != "running":
            break
        time.sleep(0.2)
    assert state == "cancelled"


def test_autoplay_only_without_reduced_motion(open_context, server: ServerProcess) -> None:
    context = open_context(**DESKTOP)
    pg = context.new_page()
    pg.goto(f"{server.url}/chapters/paths#c0-particles")
    sim_ready(pg, "c0-particles")
    pg.locator("#c0-particles canvas").scroll_into_view_if_needed()
    pg.wait_for_function("() => Number(document.querySelector('#c0-particles figure').dataset.frame) > 2", timeout=30_000)


def test_without_javascript_the_caption_and_a_note_remain(open_context, server: ServerProcess) -> None:
    context = open_context(java_script_enabled=False)
    pg = context.new_page()
    pg.goto(f"{server.url}/chapters/paths")
    figure = pg.locator("#c0-particles figure.sim")
    assert "Gaussian noise" in figure.locator(".sim__caption").inner_text()
    assert "needs JavaScript" in figure.inner_text()
    assert pg.locator("#c0-particles canvas").count() == 0


def test_dark_mode_colours_come_from_css(open_context, server: ServerProcess) -> None:
    context = open_context(viewport={"width": 360, "height": 780}, color_scheme="dark", reduced_motion="reduce")
    pg = context.new_page()
    pg.goto(f"{server.url}/chapters/sampling")
    eid = "c5-euler-faults"
    sim_ready(pg, eid)
    corner = pg.evaluate(f"""() => Array.from(document.querySelector('#{eid} canvas').getContext('2d').getImageData(3, 30, 1, 1).data)""")
    assert sum(corner[:3]) / 3 < 60, corner  # a dark panel, not a white rectangle
    assert pg.evaluate("document.documentElement.scrollWidth") <= 360
