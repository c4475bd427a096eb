"""A chapter's end in Chromium: the recap ("You can now…" and its paragraph) and the sources list
render, a citation jumps to its entry, entries link to arXiv, the table of contents reaches both,
and the end of a chapter is readable on a phone in dark mode (no sideways scroll, not blank)."""

from __future__ import annotations

from straightline.course.content import Course

from browser_support import BROWSER_MARKS, DESKTOP, pixel_stddev  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS


def test_recap_and_sources_render_and_citations_reach_their_entries(
    open_context, server: ServerProcess, real_course: Course
) -> None:
    chapter = real_course.chapter("cfm")
    recap, sources = chapter.elements[-2:]
    context = open_context(**DESKTOP)
    page = context.new_page()
    page.goto(f"{server.url}/")
    assert page.locator(".kicker").first.text_content() == f"A course in {len(real_course.chapters)} chapters"
    page.goto(f"{server.url}/chapters/cfm")
    section = page.locator(f"#{recap.id}")
    assert section.get_by_role("heading", name="You can now…").is_visible()
    items = section.locator(".recap__abilities li")
    assert items.count() == len(recap.fields["abilities"]) and 3 <= items.count() <= 5
    assert items.nth(2).inner_text().startswith("Prove that the CFM and FM losses")
    assert section.locator(".recap__summary p").inner_text().startswith("The velocity a network should output")
    entries = page.locator(f"#{sources.id} li.source")
    assert entries.count() == len(sources.fields["sources"])
    first = sources.fields["sources"][0]
    arxiv = page.locator(f"#src-{first['key']} a.source__arxiv")
    assert arxiv.get_attribute("href") == f"https://arxiv.org/abs/{first['arxiv']}"
    assert arxiv.inner_text() == f"arXiv:{first['arxiv']}"
    # a citation in the prose jumps to its entry, which is then on screen
    cite = page.locator(f'.prose > p a[href="#src-{first["key"]}"]').first
    assert cite.inner_text() == "2023" or "Lipman" in cite.inner_text()
    cite.click()
    page.wait_for_url(f"**#src-{first['key']}")
    assert page.locator(f"#src-{first['key']}").is_visible()
    assert page.evaluate(f"document.getElementById('src-{first['key']}').getBoundingClientRect().top") < 900
    toc = page.locator("nav.toc")
    assert toc.get_by_role("link", name="Recap").get_attribute("href") == f"#{recap.id}"
    assert toc.get_by_role("link", name="Sources").get_attribute("href") == f"#{sources.id}"
    page.goto(f"{server.url}/chapters/curved-spaces")  # every earlier gate is still open
    gates = sum(e.type == "checkpoint" for c in real_course.chapters[:-1] for e in c.elements)
    assert page.locator(".gate-notice__title").inner_text() == f"{gates} checkpoints before this chapter are still open."


def test_a_chapter_end_on_a_phone_in_dark_mode(browser, open_context, server: ServerProcess, real_course: Course) -> None:
    context = open_context(viewport={"width": 375, "height": 780}, color_scheme="dark")
    page = context.new_page()
    for chapter in real_course.chapters:
        page.goto(f"{server.url}/chapters/{chapter.slug}#{chapter.elements[-2].id}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, chapter.slug
    page.goto(f"{server.url}/chapters/reflow#c6-recap")
    mean, std = pixel_stddev(browser, page.screenshot())
    assert mean < 80 and std > 15, (mean, std)  # dark, and not a blank screen
