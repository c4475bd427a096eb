"""The glossary, search and review in Chromium against a real server process: a glossary link in a
chapter reaches its entry, the header search box works from the keyboard (and without JavaScript:
it is a GET form), the review page renders and answers; screenshots at 1280 px, 375 px and dark
are written to $STRAIGHTLINE_SCREENSHOTS (when set) for a person to look at, and must not be blank."""

from __future__ import annotations

import os
from pathlib import Path

from straightline.course.content import Course
from straightline.course.review import round_size

from browser_support import BROWSER_MARKS, DESKTOP, Traffic, new_context, pixel_stddev  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS


def test_a_glossary_link_in_a_chapter_reaches_its_entry(page, server: ServerProcess) -> None:
    page.goto(f"{server.url}/chapters/optimal-transport")
    link = page.locator("a.gloss[data-gloss='coupling']")
    assert link.count() == 1  # only the first use
    link.click()
    page.wait_for_url(f"{server.url}/glossary#g-coupling")
    entry = page.locator("#g-coupling")
    assert entry.is_visible()
    assert page.evaluate("document.querySelector(':target').id") == "g-coupling"
    assert "pairing noise samples with data samples" in entry.inner_text()
    top = page.evaluate("document.getElementById('g-coupling').getBoundingClientRect().top")
    assert 0 <= top < 200  # scrolled to the entry


def test_the_search_box_works_from_the_keyboard(page, server: ServerProcess) -> None:
    page.goto(f"{server.url}/chapters/paths")
    page.keyboard.press("Tab")  # the skip link
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "site-search-q":
            break
    assert page.evaluate("document.activeElement.id") == "site-search-q", "the search box is not reachable by Tab"
    page.keyboard.type("least action")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=least+action")
    first = page.locator(".search-result").first
    assert "Least action" in first.locator(".search-result__title").inner_text()
    assert first.locator("mark").count() >= 1
    first.locator(".search-result__title").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/chapters/optimal-transport#least-action")


def test_search_without_javascript(open_context, server: ServerProcess) -> None:
    context = open_context(**DESKTOP, java_script_enabled=False)
    pg = context.new_page()
    pg.goto(f"{server.url}/")
    pg.fill("#site-search-q", "<b>coupling</b>")
    pg.press("#site-search-q", "Enter")
    pg.wait_for_url("**/search?q=*")
    assert pg.locator("#search-q").input_value() == "<b>coupling</b>"
    assert pg.locator(".search-result").count() > 0
    assert pg.locator(".search-result b").count() == 0  # the query is text, never markup
    context.close()


def test_the_review_page_renders_and_answers(page, server: ServerProcess, real_course: Course) -> None:
    page.goto(f"{server.url}/review")
    items = page.locator(".review-item")
    pool = [e for e in real_course.elements.values() if e.type in ("check", "checkpoint")]
    assert items.count() == round_size(len(pool))
    check = page.locator(".el--check.review-item").first
    element_id = check.get_attribute("id").removeprefix("review-")
    options = real_course.elements[element_id].html["options"]
    right = next(i for i, o in enumerate(options, 1) if o["correct"])
    check.locator(f"label[for='review-{element_id}-o{right}']").click()
    check.get_by_role("button", name="Check this answer").click()
    page.wait_for_url(f"**/review?round=0#review-{element_id}")
    answered = page.locator(f"#review-{element_id}")
    assert answered.locator(".feedback--right").is_visible()
    assert answered.locator("details.all-explanations").count() == 1


def _shots(browser, traffic: Traffic, url: str, out: Path | None) -> None:
    for name, viewport, scheme in (("1280", (1280, 900), "light"), ("375", (375, 800), "light"), ("dark", (375, 800), "dark")):
        context = new_context(browser, traffic, viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=scheme)
        pg = context.new_page()
        for path in ("/glossary", "/search?q=optimal+transport", "/review", "/complete", "/chapters/cfm"):
            pg.goto(url + path)
            shot = pg.screenshot(full_page=False)
            mean, std = pixel_stddev(browser, shot)
            assert std > 10, f"{path} ({name}): the screenshot is nearly uniform"
            assert (mean < 80) == (scheme == "dark"), f"{path} ({name}): mean luminance {mean:.0f}"
            overflow = pg.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{path} ({name}): the page scrolls sideways by {overflow} px"
            if out is not None:
                (out / f"{path.strip('/').split('?')[0].replace('/', '-')}-{name}.png").write_bytes(shot)
        context.close()


def test_screenshots_are_not_blank_and_fit_the_width(browser, traffic: Traffic, server: ServerProcess) -> None:
    target = os.environ.get("STRAIGHTLINE_SCREENSHOTS")
    out = Path(target) if target else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    _shots(browser, traffic, server.url, out)
