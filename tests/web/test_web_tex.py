"""Every page of the real course is fully rendered: no raw TeX, no MathML errors, no backslash
commands left in the text outside code, and every formula is MathML with its TeX kept as alttext."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from straightline.course.content import Course


class _Text(HTMLParser):
    """Text nodes outside <pre>, <code>, <script>, <style> (attribute values are not text)."""

    SKIP = {"pre", "code", "script", "style", "textarea"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.chunks.append(data)


def raw_tex_problems(html: str) -> list[str]:
    problems = []
    if "<merror" in html:
        problems.append("<merror> in the page")
    parser = _Text()
    parser.feed(html)
    text = "\n".join(parser.chunks)
    for m in re.finditer(r"\$[^$\n]{0,80}\$?|\\[A-Za-z]+|\\[{}|,;!]", text):
        problems.append(f"raw TeX {m.group(0)!r} near {text[max(0, m.start() - 40):m.end() + 40]!r}")
    return problems


def test_the_checker_catches_raw_tex() -> None:
    assert raw_tex_problems("<p>the loss $\\|v\\|^2$ is</p>")
    assert raw_tex_problems("<p>see \\frac{a}{b}</p>")
    assert raw_tex_problems("<math><merror>x</merror></math>")
    assert not raw_tex_problems('<p><math alttext="\\frac12"><mn>1</mn></math> and <code>\\n</code></p>')


def test_no_raw_tex_on_any_page(real_client: TestClient, real_course: Course) -> None:
    pages = ["/", "/progress"] + [f"/chapters/{c.slug}" for c in real_course.chapters]
    for path in pages:
        html = real_client.get(path).text
        assert raw_tex_problems(html) == [], path


def test_revealed_content_has_no_raw_tex_either(real_client: TestClient, real_course: Course) -> None:
    """Hints, solutions, model answers and explanations appear only after actions: reveal them all."""
    for chapter in real_course.chapters:
        for element in chapter.elements:
            if element.type == "check":
                real_client.post(f"/elements/{element.id}/check", data={"option": "1"})
            elif element.type == "checkpoint":
                words = " ".join(f"word{k}" for k in range(int(element.fields.get("min_words", 20))))
                assert real_client.post(f"/elements/{element.id}/checkpoint", data={"answer": words}).status_code == 200
        for element in chapter.elements:
            if element.type == "derivation":
                for step in ("hint-1", "hint-2", "hint-3", "solution"):
                    real_client.post(f"/elements/{element.id}/derivation", data={"reveal": step})
            elif element.type == "adversarial":
                real_client.post(f"/elements/{element.id}/adversarial", data={"answer": "one two three four five six seven eight"})
            elif element.type == "design":
                for k in range(1, 5):
                    real_client.post(f"/elements/{element.id}/design", data={"question": str(k), "answer": "one two three four five"})
                real_client.post(f"/elements/{element.id}/design/reveal")
        html = real_client.get(f"/chapters/{chapter.slug}").text
        assert raw_tex_problems(html) == [], chapter.slug
        for element in chapter.elements:
            if element.type in ("derivation",):
                assert "Full derivation" in html
