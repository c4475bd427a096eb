"""The glossary, search, final review and completion pages over HTTP (web/routes/retrieval.py),
against the real course and a real store (SQLite, and PostgreSQL under `make test`): what they show,
what they store, what they refuse (422 naming the limit, 404, 403 from another site, 400 under a
host name the server does not answer to)."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from straightline.course.content import Course
from straightline.course.progress import AVAILABLE_TYPES
from straightline.course.review import round_size
from straightline.course.search import MAX_QUERY_CHARS

from web_support import JSON  # noqa: E402


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_every_page_has_the_search_box_and_the_new_links(real_client: TestClient) -> None:
    for path in ("/", "/chapters/paths", "/glossary", "/review", "/complete", "/search", "/progress"):
        html = real_client.get(path).text
        assert '<form class="site-search" role="search" method="get" action="/search">' in html, path
        assert 'href="/glossary"' in html and 'href="/review"' in html, path


def test_the_glossary_lists_every_entry_with_a_link_to_where_it_is_introduced(real_client: TestClient, real_course: Course) -> None:
    html = real_client.get("/glossary").text
    assert 'id="g-coupling"' in html and 'id="g-x0"' in html
    entry = re.search(r'<div class="glossary__entry" id="g-coupling">(.*?)</div>', html, re.S).group(1)
    assert 'href="/chapters/optimal-transport#plans-for-whole-distributions"' in entry
    assert "Chapter 2, “Plans for whole distributions”" in entry
    assert "<math" in re.search(r'id="g-xt">(.*?)</div>', html, re.S).group(1)  # math rendered


def test_a_chapter_links_the_first_use_of_a_term_to_an_entry_that_exists(real_client: TestClient) -> None:
    chapter = real_client.get("/chapters/optimal-transport").text
    glossary = real_client.get("/glossary").text
    targets = re.findall(r'<a class="gloss" href="/glossary#(g-[a-z0-9-]+)"', chapter)
    assert "g-coupling" in targets and len(targets) == len(set(targets))
    assert all(f'id="{t}"' in glossary for t in targets)


def test_search_finds_a_known_phrase_and_links_its_section(real_client: TestClient) -> None:
    r = real_client.get("/search", params={"q": "least action"})
    assert r.status_code == 200
    first = re.search(r'<li class="search-result">(.*?)</li>', r.text, re.S).group(1)
    assert 'href="/chapters/optimal-transport#least-action"' in first
    assert "<mark>least</mark> <mark>action</mark>" in first.lower()


def test_html_in_the_query_is_escaped_everywhere(real_client: TestClient) -> None:
    q = '<script>alert(1)</script> "x"'
    html = real_client.get("/search", params={"q": q}).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_empty_query_answers_the_page_with_a_hint(real_client: TestClient) -> None:
    for params in ({}, {"q": ""}, {"q": "   "}):
        r = real_client.get("/search", params=params)
        assert r.status_code == 200 and "Type one or more words" in r.text
    r = real_client.get("/search", params={"q": "zzyzzyqqq"})
    assert "Nothing in the course holds every word of “zzyzzyqqq”" in r.text


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("a" * (MAX_QUERY_CHARS + 1), f"the search text has {MAX_QUERY_CHARS + 1} characters; the limit is {MAX_QUERY_CHARS}"),
        ("flow\x01matching", "the search text holds the control character U+0001"),
        ("flow\nmatching", "the search text holds the control character U+000A"),
    ],
)
def test_a_bad_query_is_refused_naming_the_limit(real_client: TestClient, q: str, message: str) -> None:
    r = real_client.get("/search", params={"q": q}, headers=JSON)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["field"] == "q" and message in error["message"]
    page = real_client.get("/search", params={"q": q})
    assert page.status_code == 422 and message in page.text


def test_a_nul_in_the_query_is_refused_by_the_text_check(real_client: TestClient) -> None:
    r = real_client.get("/search?q=a%00b", headers=JSON)
    assert r.status_code == 422 and r.json()["error"]["field"] == "q"


def _review_ids(html: str, kind: str) -> list[str]:
    return re.findall(rf'<li class="el el--{kind} review-item" id="review-([a-z0-9-]+)"', html)


def test_the_review_page_is_deterministic_and_rounds_differ(real_client: TestClient, real_course: Course) -> None:
    first = real_client.get("/review").text
    assert first == real_client.get("/review").text
    ids = _review_ids(first, "check") + _review_ids(first, "checkpoint")
    assert len(ids) == round_size(len([e for e in real_course.elements.values() if e.type in ("check", "checkpoint")]))
    other = real_client.get("/review", params={"round": 1}).text
    assert set(ids) != set(_review_ids(other, "check") + _review_ids(other, "checkpoint"))
    r = real_client.get("/review", params={"round": -1}, headers=JSON)
    assert r.status_code == 422 and "round" in r.json()["error"]["message"]


def test_a_review_answer_shows_the_explanation_and_leaves_the_original_state(real_client: TestClient, real_course: Course) -> None:
    page = real_client.get("/review").text
    check_id = _review_ids(page, "check")[0]
    options = real_course.elements[check_id].html["options"]
    wrong = next(i for i, o in enumerate(options, 1) if not o["correct"])
    r = real_client.post(f"/review/{check_id}", data={"round": "0", "option": str(wrong)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/review?round=0#review-{check_id}"
    item = re.search(rf'id="review-{check_id}">(.*?)</li>\s*<li class="el|id="review-{check_id}">(.*)', real_client.get("/review").text, re.S)
    assert item and "feedback--wrong" in item.group(0)
    explanation = _text(options[wrong - 1]["explanation"]).strip()[:40]
    assert explanation in _text(item.group(0))
    state = real_client.get(f"/elements/{check_id}", headers=JSON).json()
    assert state["status"] == "new" and state["state"] is None  # the chapter's check is untouched
    answered = real_client.post(f"/review/{check_id}", data={"round": "0", "option": str(wrong)}, headers=JSON).json()
    assert answered == {"element": check_id, "kind": "review-check", "round": 0, "option": wrong, "correct": False}


def test_a_review_checkpoint_is_answered_then_rated(real_client: TestClient, real_course: Course) -> None:
    gate = next(e for e in real_course.elements.values() if e.type == "checkpoint")
    early = real_client.post(f"/review/{gate.id}", data={"round": "7", "rating": "got"}, headers=JSON)
    assert early.status_code == 409 and "answer this review question before rating" in early.json()["error"]["message"]
    short = real_client.post(f"/review/{gate.id}", data={"round": "7", "answer": "too short"}, headers=JSON)
    assert short.status_code == 422 and short.json()["error"]["field"] == "answer"
    ok = real_client.post(f"/review/{gate.id}", data={"round": "7", "answer": "the paths cannot cross each other here"}, headers=JSON)
    assert ok.status_code == 200 and ok.json()["kind"] == "review-checkpoint"
    rated = real_client.post(f"/review/{gate.id}", data={"round": "7", "rating": "partly"}, headers=JSON)
    assert rated.json()["rating"] == "partly"
    assert real_client.get(f"/elements/{gate.id}", headers=JSON).json()["state"] is None


@pytest.mark.parametrize(
    ("path", "data", "status", "field"),
    [
        ("/review/no-such-thing", {"option": "1"}, 404, None),
        ("/review/c0-particles", {"option": "1"}, 404, None),  # a simulation is not reviewed
        ("/review/c0-what-is-v", {"option": "5"}, 422, "option"),
        ("/review/c0-what-is-v", {}, 422, "option"),
        ("/review/c0-what-is-v", {"option": "1", "round": "x"}, 422, "round"),
    ],
)
def test_bad_review_answers_are_refused_and_store_nothing(real_client: TestClient, path: str, data: dict, status: int, field: str | None) -> None:
    r = real_client.post(path, data=data, headers=JSON)
    assert r.status_code == status, r.text
    assert r.json()["error"].get("field") == field
    done = real_client.get("/complete").text
    assert "over 0 recorded actions" in done


def test_a_review_answer_from_another_site_is_refused(real_client: TestClient) -> None:
    r = real_client.post("/review/c0-what-is-v", data={"option": "1"}, headers={**JSON, "Origin": "http://evil.example"})
    assert r.status_code == 403
    assert "over 0 recorded actions" in real_client.get("/complete").text


def test_the_new_routes_refuse_a_host_name_the_server_does_not_answer_to(real_client: TestClient) -> None:
    for path in ("/glossary", "/search?q=flow", "/review", "/complete"):
        assert real_client.get(path, headers={"Host": "evil.example"}).status_code == 400, path
    r = real_client.post("/review/c0-what-is-v", data={"option": "1"}, headers={"Host": "evil.example", **JSON})
    assert r.status_code == 400


def test_the_completion_page_counts_what_was_done(real_client: TestClient, real_course: Course) -> None:
    check = real_course.elements["c0-what-is-v"]
    right = next(i for i, o in enumerate(check.html["options"], 1) if o["correct"])
    real_client.post(f"/elements/{check.id}/check", data={"option": str(right)}, headers=JSON)
    html = real_client.get("/complete").text
    total = sum(1 for e in real_course.elements.values() if e.type in AVAILABLE_TYPES)  # predictions count too
    summary = _text(re.search(r'id="complete-summary">(.*?)</p>', html, re.S).group(1))
    assert f"You have done 1 of {total} exercises" in summary
    assert "over 1 recorded action," in _text(html) and "0 min" in html
    assert 'href="https://arxiv.org/abs/2412.06264"' in html and "6.S184" in html


def test_the_fixture_course_without_a_glossary_still_serves_every_page(client: TestClient) -> None:
    assert "This course has no glossary yet" in client.get("/glossary").text
    assert client.get("/search", params={"q": "ordinary differential"}).status_code == 200
    assert client.get("/review").status_code == 200 and client.get("/complete").status_code == 200


def test_review_attempts_survive_export_and_import(real_client: TestClient, real_course: Course) -> None:
    drawn = real_client.get("/review", params={"round": 3}).text
    check_id = _review_ids(drawn, "check")[0]
    options = real_course.elements[check_id].html["options"]
    wrong = next(i for i, o in enumerate(options, 1) if not o["correct"])
    gate = next(e for e in real_course.elements.values() if e.type == "checkpoint")
    real_client.post(f"/review/{check_id}", data={"round": "3", "option": str(wrong)}, headers=JSON)
    real_client.post(f"/review/{gate.id}", data={"round": "3", "answer": "the paths cannot cross each other here"}, headers=JSON)
    real_client.post(f"/review/{gate.id}", data={"round": "3", "rating": "missed"}, headers=JSON)
    exported = real_client.get("/progress/export").content
    assert [a["kind"] for a in json.loads(exported)["attempts"]] == ["review-check", "review-checkpoint", "review-rating"]
    real_client.post("/review/c0-what-is-v", data={"round": "4", "option": "1"}, headers=JSON)  # replaced by the import
    r = real_client.post("/progress/import", files={"file": ("p.json", exported, "application/json")}, headers=JSON)
    assert r.status_code == 200, r.text
    assert "over 3 recorded actions" in real_client.get("/complete").text
    page = real_client.get("/review", params={"round": 3}).text
    assert page.count("feedback--wrong") == 1 and f'id="review-{check_id}-o{wrong}" checked' in page
