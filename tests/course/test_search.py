"""Full-text search over the course (course/search.py): a known phrase finds its section, snippets
are escaped with the matches marked, and no query text is read as FTS5 syntax."""

from __future__ import annotations

import html
import re

import pytest

from straightline.course.content import Course, load_course
from straightline.course.search import SearchIndex, fts_query, plain_text


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course()


@pytest.fixture(scope="module")
def index(course: Course) -> SearchIndex:
    return SearchIndex(course)


def test_a_phrase_from_a_section_finds_that_section_first(index: SearchIndex) -> None:
    hits = index.search("Brenier's theorem")
    assert hits[0].href == "/chapters/optimal-transport#what-brenier-s-theorem-is-about"
    assert hits[0].title == "What Brenier's theorem is about"
    assert "<mark>Brenier</mark>" in hits[0].snippet_html


def test_every_section_heading_of_the_course_is_found_by_its_own_words(course: Course, index: SearchIndex) -> None:
    missed = []
    for chapter in course.chapters:
        for _level, anchor, title in chapter.toc:
            hrefs = [h.href for h in index.search(title, limit=200)]
            if f"/chapters/{chapter.slug}#{anchor}" not in hrefs:
                missed.append((chapter.slug, anchor))
    assert missed == []


def test_elements_are_found_and_link_to_their_anchor(course: Course, index: SearchIndex) -> None:
    check = course.elements["c0-what-is-v"]
    words = " ".join(re.findall(r"\w+", plain_text(check.html["question"]))[:6])
    assert "/chapters/paths#c0-what-is-v" in [h.href for h in index.search(words)]


def test_no_explanation_or_model_answer_is_searchable(course: Course, index: SearchIndex) -> None:
    gate = next(e for e in course.elements.values() if e.type == "checkpoint")
    answer = " ".join(re.findall(r"[A-Za-z]{4,}", plain_text(gate.html["model_answer"]))[:5])
    assert f"/chapters/{course.chapters[gate.chapter].slug}#{gate.id}" not in [h.href for h in index.search(answer, limit=200)]


def test_a_chapters_sources_are_found_by_author_and_link_to_its_list(course: Course, index: SearchIndex) -> None:
    chapter = next(c for c in course.chapters if any(e.type == "sources" for e in c.elements))
    sources = next(e for e in chapter.elements if e.type == "sources")
    title = sources.html["sources"][0]["title"]
    assert f"/chapters/{chapter.slug}#{sources.id}" in [h.href for h in index.search(title, limit=200)]


def test_stemming_and_a_prefix_last_word(index: SearchIndex) -> None:
    assert any("optimal-transport" in h.href for h in index.search("couplings"))
    assert index.search("logit-norm")  # the last word as typed so far


@pytest.mark.parametrize("query", ['"', "AND", "NEAR(a b)", "title:x", "*", "a OR", "-x", "^x", "(", "'; DROP TABLE docs; --"])
def test_query_syntax_is_never_interpreted(index: SearchIndex, query: str) -> None:
    index.search(query)  # no sqlite3.OperationalError
    assert fts_query("") is None and fts_query("!!! ...") is None


def test_snippets_are_escaped_text_with_only_mark_tags(index: SearchIndex) -> None:
    hits = index.search("<b>shape</b> [B]")
    assert hits
    for hit in hits:
        without_marks = hit.snippet_html.replace("<mark>", "").replace("</mark>", "")
        assert "<" not in without_marks and ">" not in without_marks
        assert html.unescape(without_marks).strip()
        title = hit.title_html.replace("<mark>", "").replace("</mark>", "")
        assert "<" not in title and html.unescape(title) == hit.title


def test_math_is_indexed_by_its_tex_source() -> None:
    assert plain_text('<p>so <span class="math inline"><math alttext="x_t &amp; y"><mi>x</mi></math></span>.</p>') == "so x_t & y ."
