"""Direct manipulation in a real browser (Chromium) against one real server for the module:
predict-then-reveal (held simulation, a click or the keyboard commits, the guess is stored and the
reveal quotes the simulation's own numbers), numbers dragged in the text (mouse and keys; values
checked against the toolkit), linked views and presets in the particle simulations, step mode in
live training (the shown minibatch obeys the path's formulas), "Copied" on shared links, the theme
toggle (stored, overriding the system's), and the SO(3) view turned by keys and drag."""

from __future__ import annotations

import math

import httpx
import pytest
import torch

from straightline.course.content import load_course
from straightline.guidance import guided_velocity
from straightline.timesteps import shift

from browser_support import BROWSER_MARKS, STILL_DESKTOP  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS


@pytest.fixture
def page(open_context):
    context = open_context(**STILL_DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    return context.new_page()


COURSE = load_course()


def _url(server: ServerProcess, element_id: str) -> str:
    """The chapter page holding the element (chapters may be renumbered or split; ids stay)."""
    chapter = next(c for c in COURSE.chapters if any(e.id == element_id for e in c.elements))
    return f"{server.url}/chapters/{chapter.slug}"


def _wait(page, js: str, arg=None, timeout: float = 90_000) -> None:
    page.wait_for_function(js, arg=arg, timeout=timeout)


def _fig(eid: str) -> str:
    return f"#{eid} figure.sim"


def _ready(page, eid: str) -> None:
    _wait(page, "(id) => { const f = document.querySelector(`#${id} figure.sim`); return f && f.dataset.state === 'ready' && !f.hasAttribute('aria-busy'); }", eid)


# --- predict, then reveal ------------------------------------------------------------------------------

def test_a_choice_prediction_holds_the_simulation_and_reveals_its_own_numbers(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c6-predict-floor"))
    _ready(page, "c6-reflow-straightening")
    assert page.locator(_fig("c6-reflow-straightening")).get_attribute("data-held") == "true"
    assert page.locator("#c6-reflow-straightening .sim__summary").text_content() == ""  # the answer is not on the page yet
    page.locator("#c6-predict-floor-g3").focus()  # keyboard only: choose with Space, commit with Enter
    page.keyboard.press("Space")
    page.locator("#c6-predict-floor button[type=submit]").focus()
    page.keyboard.press("Enter")
    reveal = page.locator("#c6-predict-floor [data-reveal]")
    _wait(page, "() => !document.querySelector('#c6-predict-floor [data-reveal]').hidden && document.querySelector('#c6-predict-floor [data-reveal]').dataset.outcome")
    rows = httpx.get(server.url + "/api/sims/reflow-straightening").json()["rounds"]
    first = next((r["round"] for r in rows if r["round"] > 0 and r["one_step"]["w2"] <= r["one_step"]["floor_high"]), "never")
    assert reveal.get_attribute("data-outcome") == str(first)
    text = reveal.text_content()
    assert f"round 3: {rows[3]['one_step']['w2']:.3f}" in text and "You predicted “After the third round”" in text
    assert ("Your prediction matched" in text) == (str(first) == "3")
    assert page.locator(_fig("c6-reflow-straightening")).get_attribute("data-held") == "false"
    assert page.locator("#c6-predict-floor .el__status").text_content().strip() == "prediction committed, answer revealed"
    page.reload()
    assert page.locator("#c6-predict-floor").get_attribute("data-status") == "done"
    assert page.locator("#c6-predict-floor-g3").is_checked() and page.locator("#c6-predict-floor-g3").is_disabled()
    _wait(page, "() => !document.querySelector('#c6-predict-floor [data-reveal]').hidden")
    assert page.locator(_fig("c6-reflow-straightening")).get_attribute("data-held") != "true"


def test_a_click_prediction_marks_the_canvas_and_compares_with_one_euler_step(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c5-predict-one-step"))
    _ready(page, "c5-euler-steps")
    canvas = page.locator("#c5-euler-steps canvas.sim__canvas")
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    guess = page.locator("#c5-predict-one-step-point").input_value()
    gx, gy = (float(v) for v in guess.split(","))
    assert abs(gx) < 0.3 and abs(gy) < 0.3  # the middle of the picture is near the origin of its box
    page.locator("#c5-predict-one-step button[type=submit]").click()
    _wait(page, "() => !document.querySelector('#c5-predict-one-step [data-reveal]').hidden")
    assert page.locator("#c5-euler-steps-steps").input_value() == "1"  # the reveal runs one step
    body = httpx.get(server.url + "/api/sims/euler-steps", params={"steps": 1, "dataset": "moons", "coupling": "independent", "seed": 0}).json()
    import base64

    import numpy as np

    frames = np.frombuffer(base64.b64decode(body["frames"]["data"]), "<i2").reshape(body["frames"]["shape"]) / body["frames"]["scale"]
    cx, cy = frames[-1].mean(0)
    text = page.locator("#c5-predict-one-step [data-reveal]").text_content()
    assert f"({gx:.2f}, {gy:.2f}) is {math.hypot(gx - cx, gy - cy):.2f} from the centre" in text
    assert f"W2 {body['quality']['w2']:.2f}" in text


# --- numbers you can drag -------------------------------------------------------------------------------

def test_drag_t_in_the_straight_path_by_keys_and_mouse(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c0-explore-lerp"))
    root = "#c0-explore-lerp"
    slider = page.locator(f"{root} [role=slider]").first
    _wait(page, "() => document.querySelector('#c0-explore-lerp .explore').classList.contains('is-live')")
    assert slider.get_attribute("aria-valuenow") == "0.25"
    out = page.locator(f"{root} [data-out=x_t]").first
    assert out.text_content() == "(−0.25, 0.75)"  # the chapter's own worked example
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert slider.get_attribute("aria-valuenow") == "0.3"
    assert out.text_content() == "(−0.10, 0.80)"  # 0.7 (-1, 0.5) + 0.3 (2, 1.5)
    page.keyboard.press("End")
    assert out.text_content() == "(2.00, 1.50)" and page.locator(f"{root} [data-out=one_minus_t]").first.text_content() == "0.00"
    figure_before = page.locator(f"{root} [data-explore-figure]").inner_html()
    b = slider.bounding_box()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2 - 100, b["y"] + b["height"] / 2, steps=5)  # 100 px: half the range
    page.mouse.up()
    assert slider.get_attribute("aria-valuenow") == "0.5"
    assert out.text_content() == "(0.50, 1.00)"
    assert page.locator(f"{root} [data-explore-figure]").inner_html() != figure_before  # the point moved


def test_drag_the_shift_and_the_guidance_scale_against_the_toolkit(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c4-explore-shift"))
    alpha = page.locator("#c4-explore-shift [role=slider]").first
    alpha.focus()
    for key, value in (("ArrowRight", 3.25), ("PageDown", 0.75), ("Home", 0.5), ("End", 6.0)):
        page.keyboard.press(key)
        assert float(alpha.get_attribute("aria-valuenow")) == pytest.approx(value)
        expected = float(shift(torch.tensor(0.5, dtype=torch.float64), value))
        assert page.locator("#c4-explore-shift [data-out=t_half]").first.text_content() == f"{expected:.2f}"
    # share of logit-normal times below 1/2 after the shift: P(shift(r) < 1/2) = P(r < shift(1/2, 1/alpha))
    r = float(shift(torch.tensor(0.5, dtype=torch.float64), 1 / 6.0))
    share = 0.5 * (1 + math.erf(math.log(r / (1 - r)) / math.sqrt(2)))
    assert page.locator("#c4-explore-shift [data-out=share_noisy]").first.text_content() == f"{round(100 * share)}%"

    page.goto(_url(server, "c9-explore-guidance"))
    w = page.locator("#c9-explore-guidance [role=slider]").first
    w.focus()

    class TwoVelocities(torch.nn.Module):  # the chapter's example: v(x, t, ∅) = (0.4, -0.2), v(x, t, c) = (1.0, 0.6)
        num_classes = 1

        def forward(self, x, t, y):
            return torch.where((y == 1)[:, None], torch.tensor([0.4, -0.2]), torch.tensor([1.0, 0.6])).expand_as(x)

    for key in ("Home", "ArrowRight", "ArrowRight", "End"):
        page.keyboard.press(key)
        value = float(w.get_attribute("aria-valuenow"))
        v = guided_velocity(TwoVelocities(), 0, value)(torch.zeros(1, 2), torch.zeros(1))[0]
        shown = page.locator("#c9-explore-guidance [data-out=v]").first.text_content()
        assert shown == f"({v[0]:.2f}, {v[1]:.2f})".replace("-", "−"), (value, shown)


# --- linked views, presets, copied links, theme, SO(3) ----------------------------------------------------

def test_linked_views_show_a_particles_training_partner_by_keys_and_pointer(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c0-particles"))
    _ready(page, "c0-particles")
    canvas = page.locator("#c0-particles canvas.sim__canvas")
    canvas.focus()
    page.keyboard.press("]")
    figure = page.locator(_fig("c0-particles"))
    assert figure.get_attribute("data-picked") == "0"
    api = httpx.get(server.url + "/api/sims/particles-flow", params={"dataset": "two_clusters", "coupling": "independent", "particles": 500, "seed": 0}).json()
    import base64

    import numpy as np

    partners = np.frombuffer(base64.b64decode(api["partners"]["data"]), "<i2").reshape(api["partners"]["shape"]) / api["partners"]["scale"]
    text = page.locator("#c0-particles .sim__linked").text_content()
    assert f"its independent partner in a training batch of 150 is ({partners[0, 0]:.2f}, {partners[0, 1]:.2f})" in text.replace("-0.00", "0.00")
    page.keyboard.press("Escape")
    assert figure.get_attribute("data-picked") == ""
    # the pointer picks the particle under it: particle 3 where the picture draws it (frame 0)
    frames = np.frombuffer(base64.b64decode(api["frames"]["data"]), "<i2").reshape(api["frames"]["shape"]) / api["frames"]["scale"]
    w, h = canvas.bounding_box()["width"], canvas.bounding_box()["height"]
    scale = min((w - 12) / 8.4, (h - 12) / 6.6)
    x, y = frames[0, 3]
    canvas.hover(position={"x": w / 2 + x * scale, "y": h / 2 - y * scale})
    _wait(page, "() => document.querySelector('#c0-particles figure.sim').dataset.picked !== ''")
    picked = int(figure.get_attribute("data-picked"))
    px, py = frames[0, picked]
    assert math.hypot((px - x) * scale, (py - y) * scale) < 14
    page.locator("#c0-particles .sim__preset", has_text="optimal-transport").click()
    _wait(page, "() => document.querySelector('#c0-particles input[value=exact_ot]').checked")
    _ready(page, "c0-particles")
    _wait(page, "() => document.querySelector('#c0-particles .sim__linked').textContent.includes('optimal-transport partner')")


def test_copied_feedback_and_the_theme_toggle(open_context, server: ServerProcess) -> None:
    context = open_context(**STILL_DESKTOP, color_scheme="dark")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(_url(server, "c0-particles"))
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"  # follows the system
    dark_bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    _ready(page, "c0-particles")
    page.locator("#c0-particles .sim__link").focus()
    page.keyboard.press("Enter")
    _wait(page, "() => document.querySelector('#c0-particles .sim__copied').textContent.startsWith('Copied')")
    assert "#sim=c0-particles&dataset=two_clusters" in page.evaluate("() => navigator.clipboard.readText()")
    toggle = page.locator("[data-theme-toggle]")
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    # the page's colours follow (the switched rules may apply a frame later on a busy machine)
    _wait(page, f"() => getComputedStyle(document.body).backgroundColor !== {dark_bg!r}")
    light_bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert light_bg != dark_bg and toggle.get_attribute("aria-pressed") == "false"
    panel = page.evaluate("() => getComputedStyle(document.querySelector('#c0-particles figure.sim')).getPropertyValue('--sim-panel').trim()")
    assert panel == "#fdfcf9"  # the simulations' light colours too
    page.reload()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"  # kept, against the system
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == light_bg


def test_the_rotation_view_turns_with_keys_and_drag(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c7-rotation-flow"))
    _ready(page, "c7-rotation-flow")
    figure = page.locator(_fig("c7-rotation-flow"))
    assert figure.get_attribute("data-camera") == "35,22"
    page.locator("#c7-rotation-flow button", has_text="Turn the view").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    assert figure.get_attribute("data-camera") == "45,32"
    canvas = page.locator("#c7-rotation-flow canvas.sim__canvas")
    b = canvas.bounding_box()
    page.mouse.move(b["x"] + 100, b["y"] + 100)
    page.mouse.down()
    page.mouse.move(b["x"] + 160, b["y"] + 100, steps=3)
    page.mouse.up()
    yaw = int(figure.get_attribute("data-camera").split(",")[0])
    assert yaw > 70  # 60 px at 0.01 rad per px, about 34 degrees more
    page.locator("#c7-rotation-flow button", has_text="Turn the view").focus()
    page.keyboard.press("Home")
    assert figure.get_attribute("data-camera") == "35,22"


# --- step mode ----------------------------------------------------------------------------------------------

def test_step_mode_shows_one_minibatch_at_a_time(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c4-live-training"))
    fig = "document.querySelector('#c4-live-training figure.sim')"
    page.locator("#c4-live-training .sim__start").click()
    _wait(page, f"() => Number({fig}.dataset.snapshots) >= 1", timeout=120_000)
    page.locator("#c4-live-training .sim__pause").focus()
    page.keyboard.press("Enter")
    _wait(page, f"() => {fig}.dataset.paused === 'true'")
    page.locator("#c4-live-training .sim__next").focus()
    page.keyboard.press("Enter")
    _wait(page, f"() => {fig}.dataset.batches === '1'")
    batch = page.evaluate(f"""() => {{ const b = {fig}.player.live.batch;
        return {{ x0: Array.from(b.x0.data), x1: Array.from(b.x1.data), xt: Array.from(b.xt.data), ut: Array.from(b.ut.data),
                  t: b.t, pl: Array.from(b.pl.data), loss: b.loss, after: b.loss_after, step: b.step }}; }}""")
    x0, x1, xt, ut = (torch.tensor(batch[k]).reshape(-1, 2) for k in ("x0", "x1", "xt", "ut"))
    t = torch.tensor(batch["t"])[:, None]
    assert len(batch["t"]) == 256
    assert torch.allclose(xt, (1 - t) * x0 + t * x1, atol=3e-3)  # x_t on each pair's straight line
    assert torch.allclose(ut, x1 - x0, atol=3e-3)  # the target is the pair's velocity
    assert sum(batch["pl"]) / 256 == pytest.approx(batch["loss"], abs=2e-3)  # the batch loss is the pairs' mean
    assert "Minibatch 1 shown" in page.locator("#c4-live-training .sim__summary").text_content()
    page.keyboard.press("Enter")
    _wait(page, f"() => {fig}.dataset.batches === '2'")
    second = page.evaluate(f"() => {fig}.player.live.batch.step")
    assert second == batch["step"]  # paused: the run itself did not move on
    page.locator("#c4-live-training details.sim__data summary").click()
    assert page.locator("#c4-live-training .sim__table-box tbody tr").count() == 16
    page.locator("#c4-live-training .sim__pause").click()  # Resume
    _wait(page, f"() => {fig}.dataset.paused === 'false'")
    page.locator("#c4-live-training .sim__stop").click()


def test_a_run_that_has_not_converged_names_the_setting_that_fixes_it(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c4-live-training"))
    page.locator("#c4-live-training-dataset").select_option("checkerboard")
    page.locator("#c4-live-training-steps").select_option("500")  # too short: 1500 steps are (bench/results/live_convergence.txt)
    page.locator("#c4-live-training .sim__start").click()
    _wait(page, "() => document.querySelector('#c4-live-training figure.sim').dataset.liveStatus === 'done'", timeout=180_000)
    hint = page.locator("#c4-live-training .sim__hint")
    assert hint.is_visible()
    text = hint.text_content()
    assert text.startswith("Not converged") and "Set Training steps to 5000" in text
    quality = page.evaluate("() => document.querySelector('#c4-live-training figure.sim').player.live.quality")
    assert quality["converged"] is False and f"{quality['off_data']:.3f}" in text


def test_linked_views_across_the_diffusion_and_flow_panels(page, server: ServerProcess) -> None:
    page.goto(_url(server, "c8-side-by-side"))
    _ready(page, "c8-side-by-side")
    stats = "() => { const c = document.querySelector('#c8-side-by-side canvas.sim__canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let h = 0; for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1]) % 1000000007; return h; }"
    before = page.evaluate(stats)
    page.locator("#c8-side-by-side canvas.sim__canvas").focus()
    page.keyboard.press("[")  # backwards from nothing: the last particle that can be picked
    figure = page.locator(_fig("c8-side-by-side"))
    assert figure.get_attribute("data-picked") == "59"
    page.keyboard.press("]")
    page.keyboard.press("]")
    assert figure.get_attribute("data-picked") == "1"
    page.wait_for_timeout(100)
    assert page.evaluate(stats) != before  # the particle's two routes are drawn
    assert page.locator("#c8-side-by-side .sim__linked").text_content().startswith("Particle 2: started at")
