"""Build-It in a real browser against a real server and the real sandbox: type a wrong cfm_loss with
the keyboard (Tab indentation included), submit with Ctrl+Enter, read the per-test results and the
first failure, fix it, pass, leave the editor with Escape then Tab, run it in the simulation and see
the canvas drawn and the W2 quoted; the code survives a reload; and without JavaScript the form
still grades and shows the result."""

from __future__ import annotations

import shutil

import pytest

from straightline.course.content import Course

from browser_support import BROWSER_MARKS, DESKTOP  # noqa: E402
from web_support import GOOD_CFM_LOSS, ServerProcess  # noqa: E402

pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed; `make test` installs it"),
]

BUILD = "c4-build-cfm-loss"
GRADING_TIMEOUT_MS = 120_000

# What the learner types, line by line; a line's indentation is what Enter carries over (and four
# more after a colon); "<<" dedents once with Shift+Tab, ">>" indents once with Tab.
TYPED = [
    "import torch",
    "",
    "def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):",
    "x_0 = noise_fn(x_1)",
    "t = torch.rand(x_1.shape[0])",
    "<<>>tb = t.view(-1, *[1] * (x_1.dim() - 1))",  # dedent to column 0, then Tab back to 4 spaces
    "x_t = (1 - tb) * x_0 + tb * x_1",
    "return ((model(x_t, t) - (x_0 - x_1)) ** 2).mean()",  # the classic bug: target reversed
]
EXPECTED = GOOD_CFM_LOSS.rstrip("\n").replace("(x_1 - x_0)", "(x_0 - x_1)")  # what the lines above type


def _clear_gates(page, server: ServerProcess, course: Course) -> str:
    element = course.elements[BUILD]
    chapter = course.chapters[element.chapter]
    for gate in (e for e in chapter.elements if e.type == "checkpoint"):
        r = page.request.post(f"{server.url}/elements/{gate.id}/checkpoint", form={"answer": "because " * 40})
        assert r.ok, r.text()
    return chapter.slug


def _canvas_colours(page, selector: str) -> int:
    """How many distinct colours the canvas holds (a blank one holds one)."""
    return page.evaluate(
        """(sel) => {
            const c = document.querySelector(sel);
            const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < data.length; i += 16) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            return seen.size;
        }""",
        selector,
    )


def test_write_submit_fix_pass_and_run_in_the_simulation(open_context, server: ServerProcess, real_course: Course) -> None:
    context = open_context(**DESKTOP)
    page = context.new_page()
    page.goto(server.url + "/")
    slug = _clear_gates(page, server, real_course)
    page.goto(f"{server.url}/chapters/{slug}#{BUILD}")
    page.evaluate("window.__noReload = 'still here'")
    section = page.locator(f"#{BUILD}")
    editor = section.locator("textarea[name=code]")
    assert section.locator(".editor__gutter").is_visible()  # line numbers, once the script runs

    # write the (wrong) solution with the keyboard
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for i, line in enumerate(TYPED):
        if line.startswith("<<>>"):
            page.keyboard.press("Shift+Tab")
            assert editor.evaluate("t => t.value.split('\\n').pop()") == ""
            page.keyboard.press("Tab")
            line = line[4:]
        page.keyboard.type(line)
        if i < len(TYPED) - 1:
            page.keyboard.press("Enter")
    assert editor.input_value() == EXPECTED
    assert section.locator(".editor__lines").inner_text().split() == [str(n) for n in range(1, len(TYPED) + 1)]

    # submit with Ctrl+Enter: per-test results, the first failure explained, in place
    page.keyboard.press("Control+Enter")
    section.locator("[data-live]").filter(has_text="Grading").wait_for(timeout=10_000)
    verdict = section.locator("[data-verdict]")
    verdict.wait_for(timeout=GRADING_TIMEOUT_MS)
    assert verdict.get_attribute("data-verdict") == "failed"
    assert "Not passing yet" in verdict.inner_text()
    message = section.locator("[data-message]").inner_text()
    assert message.startswith("Test 1 (visible example") and "x_1 - x_0" in message
    tests = section.locator(".buildit__tests li")
    assert tests.count() >= 5 and "is-first-failure" in (tests.first.get_attribute("class") or "")
    assert "Not passing yet" in section.locator("[data-live]").inner_text()
    assert page.evaluate("document.activeElement.name") == "code"  # the focus stayed in the editor

    # fix the last line with the keyboard and pass
    page.keyboard.press("Control+End")
    page.keyboard.press("Shift+Home")
    page.keyboard.type("    return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()")
    page.keyboard.press("Control+Enter")
    section.locator("[data-verdict=passed]").wait_for(timeout=GRADING_TIMEOUT_MS)
    assert "passed (2 attempts)" in section.locator(".el__status").inner_text()
    assert section.locator(".buildit__tests li.test--passed").count() == tests.count()

    # Escape, then Tab: out of the editor (keyboard users are never trapped)
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.submit") == ""  # the Submit button
    assert editor.input_value().endswith("(x_1 - x_0)) ** 2).mean()")

    # run it in the simulation: the canvas is drawn, W2 quoted
    section.get_by_role("button", name="Run it in the simulation").click()
    section.locator("[data-plot]:not([hidden])").wait_for(timeout=GRADING_TIMEOUT_MS)
    assert _canvas_colours(page, f"#{BUILD} [data-canvas]") > 20
    assert _canvas_colours(page, f"#{BUILD} [data-loss-canvas]") > 3
    summary = section.locator("[data-run-summary]").inner_text()
    assert "W2 to the data" in summary
    import re

    w2 = re.search(r"W2 to the data: yours\s+(\d+\.\d{3})", summary)
    assert w2 and 0 < float(w2.group(1)) < 1.0, summary
    assert "W2" in (section.locator("[data-canvas]").get_attribute("aria-label") or "")
    assert page.evaluate("window.__noReload") == "still here"

    # a reload restores the last code and shows the last result and run
    page.reload()
    assert page.locator(f"#{BUILD} textarea[name=code]").input_value().rstrip("\n") == EXPECTED.replace("(x_0 - x_1)", "(x_1 - x_0)")
    assert page.locator(f"#{BUILD} [data-verdict=passed]").is_visible()
    assert w2.group(1) in page.locator(f"#{BUILD} [data-run-summary]").inner_text()


def test_build_it_works_without_javascript(open_context, server: ServerProcess, real_course: Course) -> None:
    context = open_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/")
    slug = _clear_gates(page, server, real_course)
    page.goto(f"{server.url}/chapters/{slug}")
    section = page.locator(f"#{BUILD}")
    section.locator("textarea[name=code]").fill("import torch\ndef cfm_loss(model, x_1:\n    pass\n")
    with page.expect_navigation(timeout=GRADING_TIMEOUT_MS):
        section.get_by_role("button", name="Submit for grading").click()
    assert page.url.endswith(f"#{BUILD}")
    assert page.locator(f"#{BUILD} [data-verdict=syntax_error]").is_visible()
    assert "Syntax error at line 2" in page.locator(f"#{BUILD} [data-message]").inner_text()
    assert "def cfm_loss(model, x_1:" in page.locator(f"#{BUILD} textarea[name=code]").input_value()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_panel_fits_a_phone(open_context, server: ServerProcess, real_course: Course, scheme: str) -> None:
    context = open_context(viewport={"width": 360, "height": 780}, color_scheme=scheme)
    page = context.new_page()
    page.goto(server.url + "/")
    slug = _clear_gates(page, server, real_course)
    page.goto(f"{server.url}/chapters/{slug}#{BUILD}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = page.locator(f"#{BUILD} [data-editor]").bounding_box()
    assert box and box["width"] > 250 and box["x"] + box["width"] <= 360
