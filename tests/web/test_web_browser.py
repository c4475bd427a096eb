"""The course in a real browser (Playwright driving Debian's Chromium) against a real server
process: every chapter opens; checks, the Chapter 1 gate and derivation hints work in place
without a reload; state survives a reload; the page is keyboard operable; dark mode is not blank;
with JavaScript off the forms still work; and no request ever leaves 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from straightline.course.content import Course, Element

from browser_support import BROWSER_MARKS, pixel_stddev  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS


def _first(course: Course, etype: str, chapter: int | None = None) -> Element:
    for ch in course.chapters:
        if chapter is not None and ch.number != chapter:
            continue
        for element in ch.elements:
            if element.type == etype:
                return element
    raise LookupError(etype)


def _slug(course: Course, element: Element) -> str:
    return course.chapters[element.chapter].slug


#: A genuine answer to the Chapter 1 gate (enough words, and enough different ones).
GATE_ANSWER = (
    "A velocity field gives every point and time exactly one velocity, so by Picard-Lindelof the "
    "ODE started anywhere has one solution and two particles never meet at the same moment. If the "
    "velocity depended on history, a network that sees only position and time would have to learn "
    "the average of the velocities needed there, which bends the routes apart instead of crossing."
)


def _mark_no_reload(page) -> None:
    page.evaluate("window.__noReload = 'still here'")


def _assert_no_reload(page) -> None:
    assert page.evaluate("window.__noReload") == "still here", "the page reloaded"


def test_every_chapter_opens(page, server: ServerProcess, real_course: Course) -> None:
    page.goto(server.url + "/")
    assert page.locator("h1").inner_text() == "Understand Flow Matching"
    for chapter in real_course.chapters:
        page.goto(f"{server.url}/chapters/{chapter.slug}")
        assert page.locator("h1").inner_text() == chapter.title
        assert page.locator("section.el, figure.fig").count() == len(chapter.elements)  # figures have no frame
        assert page.locator("math").count() > 0
    page.goto(server.url + "/progress")
    assert page.locator("h1").inner_text() == "Your progress"


def test_answer_a_check_in_place_then_reload(page, server: ServerProcess, real_course: Course) -> None:
    check = _first(real_course, "check")
    wrong = next(i for i, o in enumerate(check.html["options"], 1) if not o["correct"])
    right = next(i for i, o in enumerate(check.html["options"], 1) if o["correct"])
    page.goto(f"{server.url}/chapters/{_slug(real_course, check)}")
    _mark_no_reload(page)
    section = page.locator(f"#{check.id}")
    section.locator(f"label[for='{check.id}-o{wrong}']").click()
    section.get_by_role("button", name="Check my answer").click()
    feedback = page.locator(f"#{check.id} .feedback--wrong")
    feedback.wait_for()
    assert "Not quite." in feedback.inner_text()
    page.locator(f"#{check.id} label[for='{check.id}-o{right}']").click()
    page.locator(f"#{check.id}").get_by_role("button", name="Check this answer").click()
    page.locator(f"#{check.id} .feedback--right").wait_for()
    _assert_no_reload(page)
    assert page.locator(f"#{check.id} .el__status").inner_text().startswith("answered correctly")
    page.reload()
    assert page.locator(f"#{check.id} .feedback--right").is_visible()
    assert page.locator(f"#{check.id}-o{right}").is_checked()


def test_clear_the_chapter_1_gate(page, server: ServerProcess, real_course: Course) -> None:
    gate = _first(real_course, "checkpoint", chapter=1)
    min_words = int(gate.fields.get("min_words", 20))
    page.goto(f"{server.url}/chapters/{_slug(real_course, gate)}")
    _mark_no_reload(page)
    box = page.locator(f"#{gate.id}-answer")
    box.fill("too short")
    page.locator(f"#{gate.id}").get_by_role("button", name="Submit my answer").click()
    error = page.locator(f"#{gate.id} .field-error")
    error.wait_for()
    assert f"write at least {min_words}" in error.inner_text()
    assert page.locator(f"#{gate.id}-answer").input_value() == "too short"  # the draft is kept
    answer = GATE_ANSWER
    assert len(answer.split()) >= min_words
    page.locator(f"#{gate.id}-answer").fill(answer)
    assert "words" in page.locator(f"#{gate.id} .word-count").inner_text()
    page.locator(f"#{gate.id}").get_by_role("button", name="Submit my answer").click()
    page.locator(f"#{gate.id} .gate-cleared").wait_for()
    assert page.locator(f"#{gate.id} .model-answer").is_visible()
    page.locator(f"#{gate.id}").get_by_role("button", name="Partly").click()
    page.locator(f"#{gate.id} .rating__saved").wait_for()
    assert page.locator(f"#{gate.id} button[value='partly']").get_attribute("aria-pressed") == "true"
    _assert_no_reload(page)
    page.reload()
    assert page.locator(f"#{gate.id} .gate-cleared").is_visible()
    assert answer[:40] in page.locator(f"#{gate.id} .answer-text").inner_text()
    page.goto(server.url + "/")
    assert "Checkpoint cleared" in page.locator(".chapter-card").nth(1).inner_text()


def test_an_open_gate_holds_the_next_chapters_until_skipped(page, server: ServerProcess, real_course: Course) -> None:
    gate = _first(real_course, "checkpoint", chapter=1)
    later = real_course.chapters[gate.chapter + 1 :]
    assert later
    for chapter in later:
        page.goto(f"{server.url}/chapters/{chapter.slug}")
        notice = page.locator(".gate-notice")
        assert notice.is_visible(), chapter.slug
        assert "still open" in notice.inner_text()
    link = page.locator(".gate-notice a").first  # the earliest open gate comes first
    assert link.get_attribute("href") == f"/chapters/{_slug(real_course, gate)}#{gate.id}"
    link.click()
    page.wait_for_url(f"**/chapters/{_slug(real_course, gate)}#{gate.id}")
    page.locator(f"#{gate.id}").get_by_role("button", name="Skip this checkpoint for now").click()
    page.locator(f"#{gate.id} .gate-skipped").wait_for()
    assert page.locator(f"#{gate.id} .el__status").inner_text() == "skipped, not answered"
    assert page.locator(f"#{gate.id}-answer").is_visible()  # it can still be answered
    gated = [c.number for c in real_course.chapters if c.number != gate.chapter and any(e.type == "checkpoint" for e in c.elements)]
    for chapter in later:  # only the later chapters' own gates (Chapters 3 and 6) still hold what follows them
        page.goto(f"{server.url}/chapters/{chapter.slug}")
        held = any(n < chapter.number for n in gated)
        assert (page.locator(".gate-notice").count() > 0) == held, chapter.slug
        hrefs = [a.get_attribute("href") for a in page.locator(".gate-notice a").all()]
        assert not any(h.endswith(f"#{gate.id}") for h in hrefs), chapter.slug  # the skipped one is gone
    page.goto(f"{server.url}/chapters/{real_course.chapters[0].slug}")
    assert page.locator(".gate-notice").count() == 0  # earlier chapters never had one


def test_reveal_hints_one_at_a_time(page, server: ServerProcess, real_course: Course) -> None:
    derivation = _first(real_course, "derivation")
    page.goto(f"{server.url}/chapters/{_slug(real_course, derivation)}")
    _mark_no_reload(page)
    el = page.locator(f"#{derivation.id}")
    for k in (1, 2, 3):
        el = page.locator(f"#{derivation.id}")
        el.get_by_role("button", name=f"Show hint {k} of 3").click()
        page.locator(f"#{derivation.id} .hint").nth(k - 1).wait_for()
        assert page.locator(f"#{derivation.id} .hint").count() == k
        focused = page.evaluate("document.activeElement.className")
        assert "hint" in focused  # focus moves to what was revealed
    page.locator(f"#{derivation.id}").get_by_role("button", name="Show the full derivation").click()
    page.locator(f"#{derivation.id} .solution").wait_for()
    _assert_no_reload(page)
    page.reload()
    assert page.locator(f"#{derivation.id} .hint").count() == 3
    assert page.locator(f"#{derivation.id} .solution").is_visible()


def test_keyboard_only(page, server: ServerProcess, real_course: Course) -> None:
    check = _first(real_course, "check")
    page.goto(f"{server.url}/chapters/{_slug(real_course, check)}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    first_shown = page.locator(f"#{check.id} input[name='option']").first.get_attribute("id")
    for _ in range(200):  # Tab through the chapter until the check's first shown option has focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == first_shown:
            break
    else:
        pytest.fail("Tab never reached the check's options")
    outline = page.evaluate("getComputedStyle(document.activeElement.nextElementSibling).outlineStyle")
    assert outline == "solid"  # the focused option shows a focus ring
    page.keyboard.press("ArrowDown")  # radio group: arrows move the choice ...
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")  # ... Space chooses
    assert page.locator(f"#{first_shown}").is_checked()
    page.keyboard.press("Enter")  # Enter submits the form
    page.locator(f"#{check.id} .feedback").wait_for()
    assert page.evaluate("document.activeElement.id") == f"{check.id}-feedback"
    page.keyboard.press("Tab")
    tag = page.evaluate("document.activeElement.tagName")
    assert tag in ("INPUT", "BUTTON", "A", "SUMMARY")




def test_dark_mode_screenshot_is_not_blank(browser, open_context, server: ServerProcess, real_course: Course) -> None:
    context = open_context(viewport={"width": 360, "height": 780}, color_scheme="dark")
    pg = context.new_page()
    for path in ["/", f"/chapters/{real_course.chapters[1].slug}"]:
        pg.goto(server.url + path)
        mean, std = pixel_stddev(browser, pg.screenshot())
        assert mean < 80, f"{path}: the page is not dark (mean luminance {mean:.0f})"
        assert std > 15, f"{path}: the screenshot is nearly uniform (std {std:.1f})"
        assert pg.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(19, 21, 24)"
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path}: the page is {width}px wide on a 360px screen"


def test_no_horizontal_scroll_on_a_phone(open_context, server: ServerProcess, real_course: Course) -> None:
    context = open_context(viewport={"width": 360, "height": 780})
    pg = context.new_page()
    for path in ["/", "/progress"] + [f"/chapters/{c.slug}" for c in real_course.chapters]:
        pg.goto(server.url + path)
        assert pg.evaluate("document.documentElement.scrollWidth") <= 360, path


def test_forms_work_without_javascript(open_context, server: ServerProcess, real_course: Course) -> None:
    context = open_context(java_script_enabled=False)
    pg = context.new_page()
    check = _first(real_course, "check")
    pg.goto(f"{server.url}/chapters/{_slug(real_course, check)}")
    pg.locator(f"label[for='{check.id}-o2']").click()
    with pg.expect_navigation():
        pg.locator(f"#{check.id}").get_by_role("button", name="Check my answer").click()
    assert pg.url.endswith(f"/chapters/{_slug(real_course, check)}#{check.id}")  # redirected back to the element
    assert pg.locator(f"#{check.id} .feedback").is_visible()

    gate = _first(real_course, "checkpoint", chapter=1)
    pg.goto(f"{server.url}/chapters/{_slug(real_course, gate)}")
    pg.locator(f"#{gate.id}-answer").fill("far too short")
    with pg.expect_navigation():
        pg.locator(f"#{gate.id}").get_by_role("button", name="Submit my answer").click()
    assert pg.locator(".page-error").is_visible() and pg.locator(f"#{gate.id} .field-error").is_visible()
    assert pg.locator(f"#{gate.id}-answer").input_value() == "far too short"
    words = " ".join(["blah"] * int(gate.fields.get("min_words", 20)))
    pg.locator(f"#{gate.id}-answer").fill(words)
    with pg.expect_navigation():
        pg.locator(f"#{gate.id}").get_by_role("button", name="Submit my answer").click()
    assert "only 1 different one" in pg.locator(f"#{gate.id} .field-error").inner_text()
    pg.locator(f"#{gate.id}-answer").fill(GATE_ANSWER)
    with pg.expect_navigation():
        pg.locator(f"#{gate.id}").get_by_role("button", name="Submit my answer").click()
    assert pg.locator(f"#{gate.id} .gate-cleared").is_visible()

    derivation = _first(real_course, "derivation")
    pg.goto(f"{server.url}/chapters/{_slug(real_course, derivation)}")
    with pg.expect_navigation():
        pg.locator(f"#{derivation.id}").get_by_role("button", name="Show hint 1 of 3").click()
    assert pg.locator(f"#{derivation.id} .hint").count() == 1


def test_no_page_is_blank(browser, open_context, server: ServerProcess, real_course: Course, tmp_path: Path) -> None:
    """Home and every chapter, wide and light, narrow and dark: no screenshot is blank."""
    for (width, height), scheme in (((1280, 900), "light"), ((360, 780), "dark")):
        context = open_context(viewport={"width": width, "height": height}, color_scheme=scheme)
        pg = context.new_page()
        for path in ["/"] + [f"/chapters/{c.slug}" for c in real_course.chapters]:
            pg.goto(server.url + path)
            shot = pg.screenshot()
            (tmp_path / f"{re.sub(r'[^a-z0-9]+', '-', path) or 'home'}-{width}-{scheme}.png").write_bytes(shot)
            _, std = pixel_stddev(browser, shot)
            assert std > 10, (path, width, scheme)
        context.close()
