"""The glossary: every symbol and term of the course, where it is introduced, and first-use links.

The glossary is a YAML file beside the chapters (`glossary.yaml`; a course directory without one
has an empty glossary). Each entry:

    - key: cfm                         [a-z0-9-]+, unique; the entry's anchor is `g-<key>`
      term: conditional flow matching  the name shown (Markdown; may hold math)
      kind: term                       term | symbol
      aliases: [conditional flow matching, CFM]   words that link to the entry (optional)
      introduced: {chapter: cfm, section: the-conditional-trick}
      definition: |
        Markdown with math.

`load_glossary(path, course)` validates it against the course (the chapter slug and the section
anchor must exist) and raises `ContentError` with `file:line`, like a chapter. `link_first_uses`
links the first use of each alias in a chapter's prose to its entry, outside math, headings, code
and existing links. An alias written all in lower case matches any case; one with a capital
(CFM, Euler) matches as written; a trailing "s" (plural) is accepted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .content import ContentError, Course, render_text

__all__ = ["GLOSSARY_FILE", "Glossary", "GlossaryEntry", "link_block", "link_first_uses", "load_glossary"]

GLOSSARY_FILE = "glossary.yaml"
KINDS = ("symbol", "term")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FIELDS = {"key", "term", "kind", "aliases", "introduced", "definition"}
_REQUIRED = ("key", "term", "kind", "introduced", "definition")


@dataclass(frozen=True)
class GlossaryEntry:
    key: str
    term: str  # plain source text (for sorting and titles)
    term_html: str
    kind: str
    aliases: tuple[str, ...]
    chapter: str  # slug
    section: str  # anchor in that chapter
    section_title: str
    definition_html: str
    line: int

    @property
    def anchor(self) -> str:
        return f"g-{self.key}"


@dataclass
class Glossary:
    entries: list[GlossaryEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        pairs = sorted(((a, i) for i, e in enumerate(self.entries) for a in e.aliases), key=lambda p: -len(p[0]))
        self._aliases = [(a.lower(), i, re.compile(_alias_regex(a))) for a, i in pairs]

    @property
    def aliases(self) -> list[tuple[str, int, re.Pattern[str]]]:
        """(alias in lower case, entry index, its pattern) for every alias, longest first."""
        return self._aliases

    def by_kind(self, kind: str) -> list[GlossaryEntry]:
        """The entries of a kind: symbols in the file's order (the notation builds up), terms A to Z."""
        entries = [e for e in self.entries if e.kind == kind]
        return entries if kind == "symbol" else sorted(entries, key=lambda e: e.term.casefold())


def _alias_regex(alias: str) -> str:
    body = re.escape(alias)
    if alias == alias.lower():  # "coupling" also matches "Coupling"; "CFM" only "CFM"
        body = f"(?i:{body})"
    return rf"(?<![\w-]){body}(?:e?s)?(?![\w-])"


# --- loading ------------------------------------------------------------------------------------

class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: 10x faster
    """A safe loader that records each mapping's 1-based line under LINE_KEY (for error messages)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE_KEY] = node.start_mark.line + 1
        return mapping


LINE_KEY = "\x00line"


def _parse(path: Path, text: str) -> list[Any]:
    try:
        items = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ContentError(path, (mark.line + 1) if mark else 1, f"the glossary is not valid YAML: {exc}") from None
    if not isinstance(items, list):
        raise ContentError(path, 1, "the glossary must be a YAML list of entries")
    return items


def _fields(path: Path, line: int, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ContentError(path, line, "a glossary entry must be a mapping (key, term, kind, introduced, definition)")
    raw = {k: v for k, v in raw.items() if k != LINE_KEY}
    if isinstance(raw.get("introduced"), dict):
        raw["introduced"] = {k: v for k, v in raw["introduced"].items() if k != LINE_KEY}
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ContentError(path, line, f"glossary entry lacks {missing} (required: {list(_REQUIRED)})")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ContentError(path, line, f"glossary entry has unknown field(s) {unknown} (allowed: {sorted(_FIELDS)})")
    if not isinstance(raw["key"], str) or not _KEY.match(raw["key"]):
        raise ContentError(path, line, f"glossary key {raw['key']!r} must match [a-z0-9-]+")
    if raw["kind"] not in KINDS:
        raise ContentError(path, line, f"glossary entry {raw['key']!r}: kind {raw['kind']!r} must be one of {', '.join(KINDS)}")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ContentError(path, line, f"glossary entry {raw['key']!r}: aliases must be a list of non-empty strings")
    return raw


def _introduced(path: Path, line: int, key: str, value: Any, course: Course) -> tuple[str, str, str]:
    """(chapter slug, section anchor, section title) where the entry is introduced; both must exist."""
    if not isinstance(value, dict) or set(value) != {"chapter", "section"}:
        raise ContentError(path, line, f"glossary entry {key!r}: introduced must be {{chapter: SLUG, section: ANCHOR}}")
    chapter = course.chapter(str(value["chapter"]))
    if chapter is None:
        known = ", ".join(c.slug for c in course.chapters)
        raise ContentError(path, line, f"glossary entry {key!r}: no chapter {value['chapter']!r} (chapters: {known})")
    titles = {anchor: text for _level, anchor, text in chapter.toc}
    if value["section"] not in titles:
        raise ContentError(
            path, line,
            f"glossary entry {key!r}: chapter {chapter.slug!r} has no section {value['section']!r} "
            f"(its sections: {', '.join(titles)})",
        )
    return chapter.slug, str(value["section"]), titles[value["section"]]


def _entry(path: Path, line: int, raw: Any, course: Course) -> GlossaryEntry:
    raw = _fields(path, line, raw)
    key = raw["key"]
    chapter, section, title = _introduced(path, line, key, raw["introduced"], course)
    term_html = render_text(path, line, f"glossary entry {key!r} term", str(raw["term"]))
    return GlossaryEntry(
        key=key,
        term=str(raw["term"]).strip(),
        term_html=term_html,
        kind=raw["kind"],
        aliases=tuple(a.strip() for a in raw.get("aliases", [])),
        chapter=chapter,
        section=section,
        section_title=title,
        definition_html=render_text(path, line, f"glossary entry {key!r} definition", raw["definition"]),
        line=line,
    )


def load_glossary(path: Path, course: Course) -> Glossary:
    """The glossary in `path` checked against `course`; an empty glossary when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return Glossary([])
    items = _parse(path, path.read_text(encoding="utf-8"))
    entries = [_entry(path, raw.get(LINE_KEY, 1) if isinstance(raw, dict) else 1, raw, course) for raw in items]
    seen: dict[str, int] = {}
    aliases: dict[str, str] = {}
    for e in entries:
        if e.key in seen:
            raise ContentError(path, e.line, f"glossary key {e.key!r} is also used at line {seen[e.key]}")
        seen[e.key] = e.line
        for alias in e.aliases:
            if alias.casefold() in aliases:
                raise ContentError(path, e.line, f"alias {alias!r} of {e.key!r} is also an alias of {aliases[alias.casefold()]!r}")
            aliases[alias.casefold()] = e.key
    return Glossary(entries)


# --- first-use links ----------------------------------------------------------------------------

#: elements whose text is never linked
_SKIP = frozenset({"a", "code", "pre", "math", "h1", "h2", "h3", "h4", "h5", "h6", "script", "style", "svg", "kbd", "figcaption"})
_TAG = re.compile(r"(<[^>]*>)")
_TAG_NAME = re.compile(r"^<(/?)([a-zA-Z][a-zA-Z0-9]*)")


def _first_alias(text: str, lower: str, start: int, glossary: Glossary, linked: set[str]) -> tuple[re.Match[str], int] | None:
    """The earliest use at or after `start` of an entry not yet linked (the longest alias at a
    tie), with the entry's index; a substring test on `lower` (the text in lower case) skips the
    aliases the text cannot hold."""
    best: tuple[re.Match[str], int] | None = None
    for alias, index, pattern in glossary.aliases:
        if glossary.entries[index].key in linked or lower.find(alias, start) < 0:
            continue
        m = pattern.search(text, start)
        if m and (best is None or m.start() < best[0].start()):
            best = (m, index)
    return best


def _link_text(text: str, glossary: Glossary, linked: set[str]) -> str:
    """`text` (escaped HTML text, no tags) with the first use of each not yet `linked` entry linked."""
    if len(text) < 2 or text.isspace():
        return text
    out: list[str] = []
    start = 0
    lower = text.lower()
    while (found := _first_alias(text, lower, start, glossary, linked)) is not None:
        m, index = found
        entry = glossary.entries[index]
        linked.add(entry.key)
        title = html.escape(entry.term.replace("$", ""), quote=True)
        out += [text[start : m.start()], f'<a class="gloss" href="/glossary#{entry.anchor}" data-gloss="{entry.key}" title="Glossary: {title}">{m.group(0)}</a>']
        start = m.end()
    return "".join(out) + text[start:]


def link_first_uses(blocks: Iterable[str], glossary: Glossary) -> list[str]:
    """The HTML blocks of one chapter, in order, with the first use of each glossary entry linked."""
    linked: set[str] = set()
    return [link_block(block, glossary, linked) for block in blocks]


def link_block(block: str, glossary: Glossary, linked: set[str]) -> str:
    """One HTML block with the first use of each entry not yet in `linked` linked (and added to it)."""
    out: list[str] = []
    skipping: list[str] = []  # open elements whose text is not linked
    for part in _TAG.split(block):
        if part.startswith("<"):
            m = _TAG_NAME.match(part)
            if m and m.group(2).lower() in _SKIP and not part.endswith("/>"):
                name = m.group(2).lower()
                if m.group(1):
                    if name in skipping:
                        del skipping[len(skipping) - 1 - skipping[::-1].index(name)]
                else:
                    skipping.append(name)
            out.append(part)
        elif part and not skipping:
            out.append(_link_text(part, glossary, linked))
        else:
            out.append(part)
    return "".join(out)
