"""A chapter's sources (the `{sources}` block) and the `[@key]` citations that point at them.

`cite(body)` finds the chapter's sources block in the raw Markdown, checks it, and replaces every
`[@key]` (or `[@a; @b]`) with a Markdown link to the entry, `#src-KEY`, labelled author-year
("Lipman et al., 2023"). It runs before the Markdown is parsed, so prose and element texts alike
get their links. Errors are `ReferenceError_(line, message)` with the line inside `body`; the
content loader adds the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["CitationError", "Source", "check_sources", "cite", "source_label"]

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# new-style ids (2210.02747, optionally with a version) and old-style ones (math/0501001)
_ARXIV = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_FENCE = re.compile(r"^(`{3,})\s*\{sources\}")
_CITATION = re.compile(r"\[(@[^\]\n]*)\]")
_REQUIRED = ("key", "authors", "title", "venue", "year")
_OPTIONAL = ("arxiv", "url")


class CitationError(ValueError):
    """A sources block or a citation that cannot be used; `line` is 1-based within the body."""

    def __init__(self, line: int, message: str):
        self.line, self.message = line, message
        super().__init__(f"{line}: {message}")


@dataclass(frozen=True)
class Source:
    key: str
    authors: str
    title: str
    venue: str
    year: int
    arxiv: str | None = None
    url: str | None = None

    @property
    def link(self) -> str | None:
        """Where the paper can be read: its arXiv page, else the given URL."""
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else self.url


def _text_field(line: int, where: str, entry: dict[str, Any], name: str) -> str:
    value = entry[name]
    if not isinstance(value, str) or not value.strip():
        raise CitationError(line, f"{where}: {name} must be non-empty text, got {value!r}")
    return " ".join(value.split())


def _source(line: int, i: int, entry: Any) -> Source:
    where = f"sources entry {i + 1}"
    if not isinstance(entry, dict):
        raise CitationError(line, f"{where} must be a mapping with {list(_REQUIRED)} (+ optional arxiv or url)")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise CitationError(line, f"{where} lacks {missing} (required: {list(_REQUIRED)})")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise CitationError(line, f"{where} has unknown field(s) {unknown} (allowed: {list(_REQUIRED + _OPTIONAL)})")
    key = entry["key"]
    if not isinstance(key, str) or not _KEY.match(key):
        raise CitationError(line, f"{where}: key {key!r} must match [a-z0-9-]+")
    year = entry["year"]
    if not isinstance(year, int) or isinstance(year, bool) or not 1600 <= year <= 2100:
        raise CitationError(line, f"source {key!r}: year {year!r} must be a four-digit year")
    return Source(
        key,
        *(_text_field(line, f"source {key!r}", entry, name) for name in ("authors", "title", "venue")),
        year=year,
        arxiv=_arxiv(line, key, entry.get("arxiv")),
        url=_url(line, key, entry.get("url")),
    )


def _arxiv(line: int, key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CitationError(line, f"source {key!r}: arxiv {value!r} must be quoted text, like \"2210.02747\"")
    if not _ARXIV.match(value):
        raise CitationError(line, f"source {key!r}: arxiv {value!r} is not an arXiv id (like 2210.02747 or math/0501001)")
    return value


def _url(line: int, key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^\s<>\"]+$", value):
        raise CitationError(line, f"source {key!r}: url {value!r} must be an http(s) address")
    return value


def check_sources(line: int, fields: Any) -> list[Source]:
    """The entries of a sources block's YAML body (`line`: the block's line, for errors)."""
    if not isinstance(fields, dict) or set(fields) != {"sources"}:
        raise CitationError(line, "a sources block holds exactly one field, 'sources': a list of entries")
    entries = fields["sources"]
    if not isinstance(entries, list) or not entries:
        raise CitationError(line, "sources must be a non-empty list of entries")
    sources = [_source(line, i, entry) for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for source in sources:
        if source.key in seen:
            raise CitationError(line, f"source key {source.key!r} is used twice in this chapter")
        seen.add(source.key)
    return sources


def _surname(author: str) -> str:
    return author.split()[-1]


def source_label(source: Source) -> str:
    """Author-year, as a citation shows it: 'Ho and Salimans, 2022', 'Lipman et al., 2023'."""
    authors = [a.strip() for a in re.split(r",|\band\b", source.authors) if a.strip()]
    if len(authors) == 1:
        names = _surname(authors[0])
    elif len(authors) == 2:
        names = f"{_surname(authors[0])} and {_surname(authors[1])}"
    else:
        names = f"{_surname(authors[0])} et al."
    return f"{names}, {source.year}"


def labels(sources: list[Source]) -> dict[str, str]:
    """Each key's label; labels that would collide get a, b, ... after the year."""
    plain = {s.key: source_label(s) for s in sources}
    counts: dict[str, int] = {}
    for label in plain.values():
        counts[label] = counts.get(label, 0) + 1
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for key, label in plain.items():
        if counts[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            label += "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
        out[key] = label
    return out


def _sources_block(body: str) -> tuple[int, Any] | None:
    """(line, parsed YAML) of the body's sources block, or None when it has none."""
    lines = body.split("\n")
    found = [(i, m.group(1)) for i, text in enumerate(lines) if (m := _FENCE.match(text))]
    if not found:
        return None
    if len(found) > 1:
        raise CitationError(found[1][0] + 1, "a chapter has one sources block; this is a second one")
    start, fence = found[0]
    end = next((j for j in range(start + 1, len(lines)) if lines[j].strip().startswith(fence)), len(lines))
    try:
        return start + 1, yaml.safe_load("\n".join(lines[start + 1 : end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CitationError(start + 2 + (mark.line if mark else 0), f"sources: invalid YAML: {exc}") from None


def _link(line: int, inner: str, known: dict[str, str]) -> str:
    keys = [part.strip() for part in inner.split(";")]
    links = []
    for key in keys:
        if not key.startswith("@") or key[1:] not in known:
            accepted = ", ".join(sorted(known)) or "none: the chapter has no sources block"
            raise CitationError(line, f"citation [{inner}] names unknown source {key!r} (this chapter's keys: {accepted})")
        links.append(f"[{known[key[1:]]}](#src-{key[1:]})")
    return "(" + "; ".join(links) + ")"


def cite(body: str) -> tuple[str, list[Source]]:
    """The body with its citations turned into links, and the chapter's sources (maybe none)."""
    block = _sources_block(body)
    sources = check_sources(*block) if block is not None else []
    known = labels(sources)
    out = []
    for i, text in enumerate(body.split("\n")):
        out.append(_CITATION.sub(lambda m, line=i + 1: _link(line, m.group(1), known), text))
    return "\n".join(out), sources
