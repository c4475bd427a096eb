"""Full-text search over the course: an in-memory SQLite FTS5 index built at start-up.

Each document is one section of a chapter (the prose under a `##`/`###` heading, up to the next
one) or one element's text as shown before the learner acts (question, options, prompt, ...; no
explanation or model answer, so search gives no answer away); its link is the
section's or the element's anchor. Math is indexed by its TeX source (the formulas' `alttext`).
Words are matched with Porter stemming ("couplings" finds "coupling"); the last word of the query
(from 3 letters) also matches as a prefix, so the box finds while one types. Ranking is BM25 with the title counted
five times as much as the body.

`SearchIndex.search(query)` answers `Hit`s whose `snippet_html` is escaped text with the matches
in `<mark>`: the learner's query never reaches the page unescaped.
"""

from __future__ import annotations

import html
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .content import Chapter, Course, Element, Section

__all__ = ["Document", "Hit", "MAX_QUERY_CHARS", "SearchIndex", "documents", "plain_text"]

MAX_QUERY_CHARS = 200
MAX_HITS = 30
PREFIX_MIN_CHARS = 3
_START, _END = "\ue000", "\ue001"  # private-use marks around matches, replaced after escaping
_MATH = re.compile(r'<math\b[^>]*?alttext="([^"]*)"[^>]*>.*?</math>', re.S)
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_HEADING = re.compile(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_WORD = re.compile(r"\w+", re.U)
#: what of an element is indexed: what the learner sees before acting. Explanations, model answers
#: and reference designs are left out, so a search never gives an answer away.
_ELEMENT_TEXT = ("title", "question", "prompt", "statement", "scenario", "brief", "caption", "summary")


def plain_text(fragment: str) -> str:
    """Rendered HTML as one line of plain text; a formula becomes its TeX source."""
    text = _MATH.sub(lambda m: " " + html.unescape(m.group(1)) + " ", fragment)
    text = html.unescape(_TAGS.sub(" ", text))
    return _SPACE.sub(" ", text.replace(_START, "").replace(_END, "")).strip()


@dataclass(frozen=True)
class Document:
    chapter: Chapter
    anchor: str
    title: str
    body: str


@dataclass(frozen=True)
class Hit:
    chapter_slug: str
    chapter_number: int
    chapter_title: str
    title: str
    href: str
    snippet_html: str
    title_html: str  # the title, escaped, matches in <mark>


def _element_text(element: Element) -> str:
    parts = [element.html[k] for k in _ELEMENT_TEXT if isinstance(element.html.get(k), str)]
    parts += [option["text"] for option in element.html.get("options", [])]
    parts += [question["question"] for question in element.html.get("questions", [])]
    parts += [a for a in element.html.get("abilities", []) if isinstance(a, str)]  # a recap's "You can now"
    parts += [" ".join(str(s[k]) for k in ("authors", "title", "venue", "year", "arxiv") if s.get(k))
              for s in element.html.get("sources", [])]  # a chapter's sources: found by author or title
    return plain_text(" ".join(parts))


def _section_documents(chapter: Chapter, prose: str) -> Iterator[Document]:
    """One document per heading of the chapter's prose (text before the first heading: the chapter's own)."""
    pieces = _HEADING.split(prose)
    title, anchor = chapter.title, ""
    yield Document(chapter, anchor, title, plain_text(pieces[0]))
    for i in range(1, len(pieces), 4):
        _level, anchor, heading, body = pieces[i : i + 4]
        yield Document(chapter, anchor, plain_text(heading), plain_text(body))


def documents(course: Course) -> Iterator[Document]:
    for chapter in course.chapters:
        prose = "".join(b.html for b in chapter.blocks if isinstance(b, Section))
        yield from (d for d in _section_documents(chapter, prose) if d.body or d.anchor)
        for element in chapter.elements:
            body = _element_text(element)
            if body:
                yield Document(chapter, element.id, f"{element.type.replace('-', ' ').capitalize()}: {element.label}", body)


def fts_query(query: str) -> str | None:
    """The learner's words as an FTS5 query (every word required; the last one, from 3 letters, also as a prefix),
    or None when the query holds no word. Words are quoted, so no FTS5 syntax gets through."""
    words = _WORD.findall(query.casefold())
    if not words:
        return None
    quoted = [f'"{w}"' for w in words]
    if len(words[-1]) >= PREFIX_MIN_CHARS:  # "t*" would match half the course, slowly
        quoted[-1] += "*"
    return " ".join(quoted)


class SearchIndex:
    """The course's text in an in-memory FTS5 table; thread-safe (one connection behind a lock)."""

    def __init__(self, course: Course):
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, slug UNINDEXED, anchor UNINDEXED, tokenize='porter unicode61 remove_diacritics 2')")
        self._chapters = {c.slug: c for c in course.chapters}
        rows = [(d.title, d.body, d.chapter.slug, d.anchor) for d in documents(course)]
        self._db.executemany("INSERT INTO docs(title, body, slug, anchor) VALUES (?, ?, ?, ?)", rows)
        self._db.execute("INSERT INTO docs(docs, rank) VALUES ('rank', 'bm25(5.0, 1.0)')")  # titles count 5x
        self.size = len(rows)

    def search(self, query: str, limit: int = MAX_HITS) -> list[Hit]:
        match = fts_query(query)
        if match is None:
            return []
        # ORDER BY rank (bm25 with the weights configured above) is FTS5's fast path: it ranks every
        # match but builds highlights and snippets only for the rows returned
        sql = (
            "SELECT highlight(docs, 0, ?, ?), slug, anchor, snippet(docs, 1, ?, ?, ' … ', 24) FROM docs "
            "WHERE docs MATCH ? ORDER BY rank LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (_START, _END, _START, _END, match, limit)).fetchall()
        return [self._hit(*row) for row in rows]

    def _hit(self, title: str, slug: str, anchor: str, snippet: str) -> Hit:
        chapter = self._chapters[slug]
        href = f"/chapters/{slug}" + (f"#{anchor}" if anchor else "")
        plain_title = title.replace(_START, "").replace(_END, "")
        return Hit(slug, chapter.number, chapter.title, plain_title, href, _marked(snippet), _marked(title))


def _marked(text: str) -> str:
    """Escaped text with the matches (between the private-use marks) in <mark>."""
    return html.escape(text).replace(_START, "<mark>").replace(_END, "</mark>")
