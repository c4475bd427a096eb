"""Math as a learner sees it in Chromium, on every chapter with everything revealed: aligned blocks
line up at their relation signs, their fractions keep display size, no formula is clipped on a
1280 px desktop, and none needs scrolling on a 375 px phone."""

from __future__ import annotations


from straightline.course.content import Course

from browser_support import BROWSER_MARKS  # noqa: E402
from web_support import ServerProcess  # noqa: E402

pytestmark = BROWSER_MARKS
RELATIONS = "=≤≥<>≈⇔≡∝"
MAX_SCROLLING_ON_A_PHONE = 0


def reveal_everything(request, base: str, course: Course) -> None:
    """Act on every element (through the learner's own cookie) so that hints, solutions, model
    answers, explanations and reference designs are on the pages."""
    post = lambda path, form=None: request.post(base + path, form=form or {}, headers={"Accept": "application/json"})  # noqa: E731
    for chapter in course.chapters:
        for el in chapter.elements:
            if el.type == "check":
                right = next(i for i, o in enumerate(el.html["options"], 1) if o["correct"])
                assert post(f"/elements/{el.id}/check", {"option": str(right)}).ok
            elif el.type == "checkpoint":
                words = " ".join(f"word{k}" for k in range(int(el.fields.get("min_words", 20))))
                assert post(f"/elements/{el.id}/checkpoint", {"answer": words}).ok
        for el in chapter.elements:
            if el.type == "derivation":
                for step in ("hint-1", "hint-2", "hint-3", "solution"):
                    assert post(f"/elements/{el.id}/derivation", {"reveal": step}).ok
            elif el.type == "adversarial":
                assert post(f"/elements/{el.id}/adversarial", {"answer": "one two three four five six seven eight"}).ok
            elif el.type == "design":
                for k in range(1, 5):
                    assert post(f"/elements/{el.id}/design", {"question": str(k), "answer": "one two three four five"}).ok
                assert post(f"/elements/{el.id}/design/reveal").ok


MEASURE = """async (signs) => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  await new Promise(resolve => setTimeout(resolve, 200));  // the page lays out what was opened
  const relations = new Set([...signs]);
  const clipped = [];
  document.querySelectorAll('.math-display, .math.inline:not(:has(> .math-piece)), .math-piece').forEach(box => {
    if (box.getClientRects().length && box.scrollWidth > box.clientWidth + 1) {
      clipped.push((box.querySelector('math') || box).getAttribute('alttext') || box.textContent);
    }
  });
  const shown = [...document.querySelectorAll('.math-display mtable')].filter(t => t.getClientRects().length);
  const aligned = shown.map(table => {
    // the relation sign that opens each row's left-aligned cell (rows that continue a line or
    // hold a long left-hand side have none)
    const rows = [...table.querySelectorAll(':scope > mtr')].map(row => {
      const sign = row.querySelector(':scope > mtd[columnalign="left"] > mrow > mo:first-child');
      return sign && relations.has(sign.textContent.trim()) ? sign.getBoundingClientRect().left : null;
    }).filter(x => x !== null);
    const styles = [...table.querySelectorAll('mtd')].map(td => getComputedStyle(td).mathStyle);
    return {tex: table.closest('math').getAttribute('alttext'), xs: rows, styles};
  });
  return {clipped, aligned};
}"""


def _measure(browser, base: str, course: Course, width: int) -> dict[str, dict]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(base + "/")
    reveal_everything(context.request, base, course)
    found = {}
    for chapter in course.chapters:
        page.goto(f"{base}/chapters/{chapter.slug}")
        found[chapter.slug] = page.evaluate(MEASURE, RELATIONS)
    context.close()
    return found


def test_aligned_blocks_line_up_and_no_formula_is_clipped_on_a_desktop(browser, server: ServerProcess, real_course: Course) -> None:
    found = _measure(browser, server.url, real_course, 1280)
    blocks = [(slug, a) for slug, f in found.items() for a in f["aligned"]]
    assert len(blocks) >= 3
    for slug, block in blocks:
        if "aligned" in block["tex"]:  # an authored aligned block: every row has its relation
            assert len(block["xs"]) >= 2, (slug, block["tex"])
        if len(block["xs"]) >= 2:
            assert max(block["xs"]) - min(block["xs"]) <= 1.5, (slug, block["tex"], block["xs"])
        assert set(block["styles"]) == {"normal"}, (slug, block["tex"])  # display-size fractions
    clipped = [(slug, tex) for slug, f in found.items() for tex in f["clipped"]]
    assert clipped == []


def test_no_formula_scrolls_on_a_phone(browser, server: ServerProcess, real_course: Course) -> None:
    found = _measure(browser, server.url, real_course, 375)
    for slug, block in [(slug, a) for slug, f in found.items() for a in f["aligned"]]:
        if len(block["xs"]) >= 2:  # the rows broken for the phone line up too
            assert max(block["xs"]) - min(block["xs"]) <= 1.5, (slug, block["tex"], block["xs"])
    scrolling = [(slug, tex[:70]) for slug, f in found.items() for tex in f["clipped"]]
    assert len(scrolling) <= MAX_SCROLLING_ON_A_PHONE, scrolling
