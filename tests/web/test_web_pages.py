"""Pages over HTTP: home, chapters, progress, errors, health, OpenAPI, static files; every
element type renders; no page refers to anything outside this server."""

from __future__ import annotations

from markupsafe import escape
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from straightline.course.content import Course


def test_home_lists_chapters_with_summary_minutes_and_progress(client: TestClient, fixture_course: Course) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for chapter in fixture_course.chapters:
        assert f'href="/chapters/{chapter.slug}"' in r.text
        assert str(escape(chapter.summary)) in r.text and f"{chapter.minutes} min" in r.text
    assert "0 of 2 done" in r.text and "0 of 5 done" in r.text and "Checkpoint open" in r.text
    client.post("/elements/a-check/check", data={"option": "1"})
    home = client.get("/").text
    assert "1 of 2 done" in home and "completed 1 of 7 exercises" in home


def test_chapter_page_has_title_toc_pager_and_every_element(client: TestClient, fixture_course: Course) -> None:
    alpha, beta = fixture_course.chapters
    page = client.get("/chapters/alpha").text
    assert "<h1>Alpha, a test chapter</h1>" in page
    assert '<nav class="toc"' in page and 'href="#straight-lines"' in page
    assert 'rel="next"' in page and 'href="/chapters/beta"' in page and 'rel="prev"' not in page
    assert 'rel="prev"' in client.get("/chapters/beta").text
    for chapter in (alpha, beta):
        html = client.get(f"/chapters/{chapter.slug}").text
        for element in chapter.elements:
            assert f'id="{element.id}"' in html, element.id
            assert f"el--{element.type}" in html


def test_every_element_type_renders_as_expected(client: TestClient) -> None:
    alpha = client.get("/chapters/alpha").text
    beta = client.get("/chapters/beta").text

    def section(html: str, element_id: str) -> str:
        return re.search(rf'<section[^>]*id="{element_id}".*?</section>', html, re.S).group(0)

    check = section(alpha, "a-check")
    assert check.count('type="radio" name="option"') == 4 and "Check my answer" in check
    derivation = section(alpha, "a-derivation")
    assert "Show hint 1 of 3" in derivation and "Hint one" not in derivation and "Show the full derivation" in derivation
    pattern = section(alpha, "a-pattern")
    assert "Flow matching" in pattern and "Mechanics" in pattern and "A question to think about" in pattern
    listing = section(alpha, "a-listing")
    assert '<pre class="code"' in listing and "def</span>" in listing and "load_course" in listing
    later = section(alpha, "a-listing-later")
    assert "Coming with the advanced-toolkit issue" in later and "<pre" not in later
    sim = section(alpha, "a-sim")  # the figure the canvas player fills (tests/web/test_web_sims_browser.py)
    assert 'data-sim="particles-flow"' in sim and "Particles flow from noise to data." in sim and "needs JavaScript" in sim
    assert "is-locked" in section(beta, "b-build") and "<textarea" not in section(beta, "b-build")
    lab = section(beta, "b-break")
    assert 'data-sim="euler-faults"' in lab and "Break the sampler." in lab and "Coming with" not in lab
    gate = section(beta, "b-gate")
    assert "<textarea" in gate and "At least 5 words" in gate and "Uniqueness of solutions" not in gate
    assert "is-locked" in section(beta, "b-design")


def test_progress_page_lists_every_interactive_element_and_its_state(client: TestClient, fixture_course: Course) -> None:
    client.post("/elements/a-check/check", data={"option": "2"})
    page = client.get("/progress").text
    for element in fixture_course.elements.values():
        if element.interactive:
            assert f'href="/chapters/{fixture_course.chapters[element.chapter].slug}#{element.id}"' in page
    assert "answered, not yet correct (1 attempt)" in page
    assert "locked until you clear the chapter&#39;s checkpoint" in page
    assert 'href="/progress/export"' in page and 'action="/progress/import"' in page


@pytest.mark.parametrize("path", ["/chapters/nope", "/nowhere", "/chapters/"])
def test_unknown_pages_are_a_404_page(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "<h1>Not found</h1>" in r.text and 'href="/"' in r.text
    if path == "/chapters/nope":
        assert "There is no chapter &#39;nope&#39;. The chapters are: alpha, beta." in r.text


def test_bad_query_parameter_is_422_naming_it(client: TestClient) -> None:
    r = client.get("/progress?imported=-1")
    assert r.status_code == 422 and "imported" in r.text
    assert client.get("/progress?imported=3").text.count("3 elements restored") == 1


def test_method_not_allowed(client: TestClient) -> None:
    assert client.get("/elements/a-check/check").status_code == 405


def test_healthz(client: TestClient, store_url: str) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body.pop("simulations") in ("idle", "loading", "warming", "ready")  # never started by asking
    assert body == {"status": "ok", "chapters": 2, "elements": 16, "database": store_url.split(":")[0].split("+")[0]}


def test_openapi_lists_the_routes_and_docs_pages_are_off(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/",
        "/chapters/{slug}",
        "/elements/{element_id}",
        "/elements/{element_id}/check",
        "/elements/{element_id}/checkpoint",
        "/elements/{element_id}/checkpoint/rating",
        "/elements/{element_id}/derivation",
        "/elements/{element_id}/adversarial",
        "/elements/{element_id}/design",
        "/elements/{element_id}/design/reveal",
        "/progress",
        "/progress/export",
        "/progress/import",
        "/healthz",
    } <= paths
    form = schema["paths"]["/elements/{element_id}/check"]["post"]["requestBody"]["content"]
    assert "option" in str(form) or "application/x-www-form-urlencoded" in form
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_static_files_and_security_headers(client: TestClient) -> None:
    page = client.get("/")
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', page.text).group(1)
    js = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', page.text).group(1)
    r = client.get(css)
    assert r.status_code == 200 and "prefers-color-scheme: dark" in r.text and "immutable" in r.headers["cache-control"]
    assert "prefers-reduced-motion" in r.text
    r = client.get(js)
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


class _Refs(HTMLParser):
    """What a page loads or submits to (`refs`), and the papers its sources link to (`papers`:
    a link the reader may follow is not something the page loads)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.papers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if tag == "a" and name == "href" and value and value.startswith("https://arxiv.org/abs/"):
                self.papers.append(value)
            elif name in ("href", "src", "action", "srcset", "poster", "data") and value:
                self.refs.append(value)


NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1998/Math/MathML"}


def assert_local_only(html: str) -> None:
    parser = _Refs()
    parser.feed(html)
    for ref in parser.refs:
        assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", ref, re.I), f"external reference {ref!r}"
        assert not ref.lower().startswith(("http:", "https:", "javascript:")), ref
    for url in re.findall(r"https?://[^\s\"'<>)]+", html):
        assert url in NAMESPACES or url in parser.papers, f"external URL {url!r} in the page"


def test_no_page_refers_outside_this_server(client: TestClient) -> None:
    for path in ["/", "/progress", "/chapters/alpha", "/chapters/beta", "/nope"]:
        assert_local_only(client.get(path).text)
    css = client.get("/static/app.css").text
    assert "url(" not in css.replace("url(#", "") and "@import" not in css


def test_real_course_pages_refer_to_nothing_outside(real_client: TestClient, real_course: Course) -> None:
    assert_local_only(real_client.get("/").text)
    assert_local_only(real_client.get("/progress").text)
    for chapter in real_course.chapters:
        r = real_client.get(f"/chapters/{chapter.slug}")
        assert r.status_code == 200
        assert_local_only(r.text)
