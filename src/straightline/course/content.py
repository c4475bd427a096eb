"""Load and validate the course's chapter sources (docs/content-format.md describes the format).

`load_course(directory)` parses every `NN-slug.md` file once, renders its prose and element texts
to HTML (with MathML), and returns a `Course`. Anything malformed raises `ContentError` carrying
`file:line: what is wrong`; the app refuses to start on it.

    python -m straightline.course.content check [DIRECTORY]
"""

from __future__ import annotations

import hashlib
import html
import importlib
import inspect
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import figures as figs
from . import explorables, predictions
from . import markdown as md
from . import quotes, references

__all__ = [
    "Chapter",
    "ContentError",
    "Course",
    "Element",
    "ELEMENT_TYPES",
    "DEFAULT_CHAPTERS_DIR",
    "load_course",
    "load_chapter",
    "render_text",
]

DEFAULT_CHAPTERS_DIR = Path(__file__).parent / "chapters"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FILE = re.compile(r"^(\d\d)-([a-z0-9-]+)\.md$")
_INFO = re.compile(r"^\{([a-z-]+)\}\s*(\S*)\s*$")
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # .../straightline


class ContentError(ValueError):
    """A content file that cannot be used; `str()` is `file:line: message`."""

    def __init__(self, path: Path | str, line: int, message: str):
        self.path, self.line, self.message = Path(path), line, message
        super().__init__(f"{path}:{line}: {message}")


# --- the element schema -------------------------------------------------------------------------
# For each type: required fields, optional fields. Text fields are Markdown rendered to HTML;
# the schema below says which fields are text.

@dataclass(frozen=True)
class _Schema:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    text: tuple[str, ...] = ()


_SCHEMAS: dict[str, _Schema] = {
    "check": _Schema(("question", "options"), (), ("question",)),
    "checkpoint": _Schema(("prompt", "model_answer"), ("min_words",), ("prompt", "model_answer")),
    "derivation": _Schema(("title", "statement", "hints", "solution"), (), ("title", "statement", "solution")),
    "pattern": _Schema(
        ("title", "left_title", "left", "right_title", "right", "question"),
        ("answer",),
        ("title", "left_title", "left", "right_title", "right", "question", "answer"),
    ),
    "adversarial": _Schema(
        ("title", "scenario", "prompt", "explanation"), ("experiment",), ("title", "scenario", "prompt", "explanation")
    ),
    "design": _Schema(("title", "brief", "questions", "reference_design"), (), ("title", "brief", "reference_design")),
    "simulation": _Schema(("sim", "caption"), ("params",), ("caption",)),
    "build-it": _Schema(("exercise", "prompt"), (), ("prompt",)),
    "break-it": _Schema(("lab", "caption"), (), ("caption",)),
    "listing": _Schema(("caption",), ("object", "region", "file", "coming_with"), ("caption",)),
    "recap": _Schema(("abilities", "summary"), (), ("summary",)),
    "sources": _Schema(("sources",)),
    "figure": _Schema(("figure", "alt", "caption"), (), ("caption",)),
    "predict": _Schema(("sim", "rule", "question"), ("options",), ("question",)),
    "explore": _Schema(("model", "text"), ("given", "values"), ()),
}
ELEMENT_TYPES: tuple[str, ...] = tuple(_SCHEMAS)

#: Elements a learner acts on, and so which have a progress state.
INTERACTIVE_TYPES = ("check", "checkpoint", "derivation", "adversarial", "design", "build-it", "break-it", "predict")

DEFAULT_MIN_WORDS = 20

#: Every chapter must end with a recap and then its sources.
REQUIRE_RECAP_AND_SOURCES = True
ABILITIES = (3, 5)  # how many "You can now ..." items a recap lists
_END_TOC = {"recap": "Recap", "sources": "Sources"}  # their entries in the table of contents


@dataclass
class Element:
    id: str
    type: str
    line: int
    fields: dict[str, Any]  # raw YAML values
    html: dict[str, Any]  # rendered text fields (and nested lists for options/hints/questions)
    chapter: int = -1

    @property
    def interactive(self) -> bool:
        return self.type in INTERACTIVE_TYPES

    @property
    def label(self) -> str:
        """A short human label for progress lists and search results."""
        if self.type in _FIXED_LABELS:
            return _FIXED_LABELS[self.type]
        for key in ("alt",) if self.type == "figure" else ("title", "question", "prompt", "caption"):
            value = self.fields.get(key)
            if isinstance(value, str) and value.strip():
                text = re.sub(r"\$+[^$]*\$+", "…", value.strip().splitlines()[0])
                return text[:90] + ("…" if len(text) > 90 else "")
        return self.id


#: labels of the elements whose text says nothing about them in one line
_FIXED_LABELS = {"recap": "You can now…", "sources": "the papers this chapter cites"}


@dataclass
class Section:
    """A run of prose between elements."""

    html: str


@dataclass
class Chapter:
    number: int
    slug: str
    title: str
    summary: str
    minutes: int
    path: Path
    blocks: list[Section | Element]
    toc: list[tuple[int, str, str]]  # (level, anchor, text)

    @property
    def elements(self) -> list[Element]:
        return [b for b in self.blocks if isinstance(b, Element)]



@dataclass
class Course:
    chapters: list[Chapter]
    elements: dict[str, Element] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for chapter in self.chapters:
            for element in chapter.elements:
                self.elements[element.id] = element
        self._by_slug = {c.slug: c for c in self.chapters}
        checks = [e.id for c in self.chapters for e in c.elements if e.type == "check"]
        self._check_index = {eid: i for i, eid in enumerate(checks)}

    def option_order(self, element_id: str, learner: str) -> tuple[int, ...]:
        """The order (authored option numbers, 1-based) in which `learner` sees a check's options.

        Stable for a learner and element. The right option's shown position walks through the
        positions check after check from a per-learner start, so for every learner it is first in
        at most a quarter of the checks, rounded up; the other options are shuffled per learner.
        """
        options = self.elements[element_id].html["options"]
        right = next(i for i, o in enumerate(options, 1) if o["correct"])
        seed = hashlib.sha256(f"{learner}\x00{element_id}".encode()).digest()
        others = [i for i in range(1, len(options) + 1) if i != right]
        random.Random(seed).shuffle(others)
        start = hashlib.sha256(learner.encode()).digest()[0]
        position = (self._check_index[element_id] + start) % len(options)
        return tuple(others[:position] + [right] + others[position:])

    def chapter(self, slug: str) -> Chapter | None:
        return self._by_slug.get(slug)

    def neighbours(self, chapter: Chapter) -> tuple[Chapter | None, Chapter | None]:
        i = self.chapters.index(chapter)
        prev = self.chapters[i - 1] if i > 0 else None
        nxt = self.chapters[i + 1] if i + 1 < len(self.chapters) else None
        return prev, nxt


# --- parsing ------------------------------------------------------------------------------------

def _split_front_matter(path: Path, text: str) -> tuple[dict[str, Any], str, int]:
    if not text.startswith("---\n"):
        raise ContentError(path, 1, "missing front matter: the file must start with a '---' line")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ContentError(path, 1, "front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        line = 2 + getattr(getattr(exc, "problem_mark", None), "line", 0)
        raise ContentError(path, line, f"front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise ContentError(path, 2, "front matter must be a mapping of keys to values")
    body_offset = text[: end + 5].count("\n")
    return meta, text[end + 5 :], body_offset


def _check_meta(path: Path, meta: dict[str, Any], expected_number: int) -> None:
    for key in ("number", "slug", "title", "summary", "minutes"):
        if key not in meta:
            raise ContentError(path, 2, f"front matter lacks {key!r} (needs number, slug, title, summary, minutes)")
    unknown = set(meta) - {"number", "slug", "title", "summary", "minutes"}
    if unknown:
        raise ContentError(path, 2, f"unknown front matter key(s) {sorted(unknown)}")
    if meta["number"] != expected_number:
        raise ContentError(path, 2, f"number is {meta['number']!r} but the file name says {expected_number}")
    if not isinstance(meta["slug"], str) or not _ID.match(meta["slug"]):
        raise ContentError(path, 2, f"slug {meta['slug']!r} must match [a-z0-9-]+")
    if not isinstance(meta["minutes"], int) or not 1 <= meta["minutes"] <= 240:
        raise ContentError(path, 2, f"minutes {meta['minutes']!r} must be an integer in 1..240")
    for key in ("title", "summary"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise ContentError(path, 2, f"{key} must be a non-empty string")


def render_text(path: Path, line: int, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContentError(path, line, f"{where} must be non-empty text, got {value!r}")
    try:
        return md.render(value)
    except md.MathError as exc:
        raise ContentError(path, line, f"{where}: {exc}") from None


def _check_field_names(path: Path, line: int, where: str, schema: _Schema, fields: Any) -> None:
    """ContentError unless `fields` is a mapping with every required and only known fields."""
    if not isinstance(fields, dict):
        raise ContentError(path, line, f"{where}: the block body must be a YAML mapping")
    missing = [k for k in schema.required if k not in fields]
    if missing:
        raise ContentError(path, line, f"{where} lacks {missing} (required: {list(schema.required)})")
    unknown = sorted(set(fields) - set(schema.required) - set(schema.optional))
    if unknown:
        allowed = list(schema.required + schema.optional)
        raise ContentError(path, line, f"{where} has unknown field(s) {unknown} (allowed: {allowed})")


def _check_option(path: Path, line: int, where: str, i: int, opt: Any) -> dict[str, Any]:
    """Option i (0-based) of a check, rendered: text, explanation and whether it is correct."""
    if not isinstance(opt, dict) or set(opt) - {"text", "correct", "explanation"} or "text" not in opt:
        raise ContentError(path, line, f"{where} option {i + 1} needs text, explanation and optional correct")
    if "explanation" not in opt:
        raise ContentError(path, line, f"{where} option {i + 1} lacks its explanation")
    if not isinstance(opt.get("correct", False), bool):
        raise ContentError(path, line, f"{where} option {i + 1}: correct must be true or false")
    return {
        "text": render_text(path, line, f"{where} option {i + 1} text", opt["text"]),
        "explanation": render_text(path, line, f"{where} option {i + 1} explanation", opt["explanation"]),
        "correct": bool(opt.get("correct", False)),
    }


def _check_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    options = fields["options"]
    if not isinstance(options, list) or len(options) != 4:
        raise ContentError(path, line, f"{where} must have exactly 4 options, got {_count(options)}")
    rendered = [_check_option(path, line, where, i, opt) for i, opt in enumerate(options)]
    n_correct = sum(o["correct"] for o in rendered)
    if n_correct != 1:
        raise ContentError(path, line, f"{where} must have exactly one correct option, has {n_correct}")
    return {"options": rendered}


def _checkpoint_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    mw = fields.get("min_words", DEFAULT_MIN_WORDS)
    if not isinstance(mw, int) or not 1 <= mw <= 500:
        raise ContentError(path, line, f"{where}: min_words {mw!r} must be an integer in 1..500")
    return {}


def _derivation_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    hints = fields["hints"]
    if not isinstance(hints, list) or len(hints) != 3:
        raise ContentError(path, line, f"{where} must have exactly 3 hints, got {_count(hints)}")
    return {"hints": [render_text(path, line, f"{where} hint {i + 1}", h) for i, h in enumerate(hints)]}


def _design_question(path: Path, line: int, where: str, i: int, q: Any) -> dict[str, str]:
    if not isinstance(q, dict) or set(q) != {"question", "reference"}:
        raise ContentError(path, line, f"{where} question {i + 1} needs exactly 'question' and 'reference'")
    return {
        "question": render_text(path, line, f"{where} question {i + 1}", q["question"]),
        "reference": render_text(path, line, f"{where} reference {i + 1}", q["reference"]),
    }


def _design_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    questions = fields["questions"]
    if not isinstance(questions, list) or len(questions) != 4:
        raise ContentError(path, line, f"{where} must have exactly 4 questions, got {_count(questions)}")
    return {"questions": [_design_question(path, line, where, i, q) for i, q in enumerate(questions)]}


def _recap_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    abilities = fields["abilities"]
    low, high = ABILITIES
    if not isinstance(abilities, list) or not low <= len(abilities) <= high:
        raise ContentError(path, line, f"{where} must list {low} to {high} abilities, got {_count(abilities)}")
    return {"abilities": [render_text(path, line, f"{where} ability {i + 1}", a) for i, a in enumerate(abilities)]}


def _sources_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        sources = references.check_sources(line, fields)
    except references.CitationError as exc:
        raise ContentError(path, line, f"{where}: {exc.message}") from None
    labels = references.labels(sources)
    return {
        "sources": [
            {
                "key": s.key,
                "label": html.escape(labels[s.key]),
                "authors": html.escape(s.authors),
                "title": html.escape(s.title),
                "venue": html.escape(s.venue),
                "year": s.year,
                "arxiv": s.arxiv,
                "link": html.escape(s.link, quote=True) if s.link else None,
            }
            for s in sources
        ]
    }


def _named_html(key: str) -> Callable[[Path, int, str, dict[str, Any]], dict[str, Any]]:
    """The check of an element that names a simulation, lab or exercise in its field `key`."""

    def check(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(fields[key], str) or not re.match(r"^[a-z0-9_-]+$", fields[key]):
            raise ContentError(path, line, f"{where}: {key} {fields[key]!r} must be a name like 'euler-steps'")
        if key == "sim" and not isinstance(fields.get("params", {}), dict):
            raise ContentError(path, line, f"{where}: params must be a mapping")
        return {}

    return check


def _listing_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"code": _resolve_listing(path, line, where, fields)}


def _figure_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The shipped SVG of the named figure, labelled with its alt text for assistive technology."""
    name, alt = fields["figure"], fields["alt"]
    if not isinstance(name, str) or name not in figs.FIGURES:
        raise ContentError(path, line, f"{where}: unknown figure {name!r} (accepted: {', '.join(figs.FIGURES)})")
    if not isinstance(alt, str) or not alt.strip():
        raise ContentError(path, line, f"{where}: alt must be non-empty text describing the figure, got {alt!r}")
    try:
        svg = figs.shipped_svg(name)
    except OSError:
        raise ContentError(path, line, f"{where}: figure {name!r} has no SVG yet (run: straightline build-figures)") from None
    alt = " ".join(alt.split())
    label = html.escape(alt, quote=True)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
    head, rest = svg.split(">", 1)
    return {"svg": f"{head}><title>{label}</title>{rest}", "alt": alt}
def _predict_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        rule = predictions.check_fields(where, fields)
    except ValueError as exc:
        raise ContentError(path, line, str(exc)) from None
    options = fields.get("options") or []
    rendered = [{"outcome": str(o["outcome"]), "text": render_text(path, line, f"{where} option {i}", o["text"])}
                for i, o in enumerate(options, 1)]
    return {"options": rendered, "kind": rule.kind, "box": list(rule.box)}


def _explore_html(path: Path, line: int, where: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The text with each [[name]] a draggable number and each [[=name]] a computed output."""
    try:
        explorables.check_fields(where, fields)
    except ValueError as exc:
        raise ContentError(path, line, str(exc)) from None
    found: list[tuple[bool, str]] = []

    def token(m: re.Match) -> str:
        found.append((m.group(1) == "=", m.group(2)))
        return f"XPLR{len(found) - 1}Q"

    source = explorables.PLACEHOLDER.sub(token, fields["text"])
    prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", source, flags=re.S)  # the text outside math
    out = render_text(path, line, f"{where} text", source)
    for i, (is_output, name) in enumerate(found):
        if f"XPLR{i}Q" not in prose or f"XPLR{i}Q" not in out:
            raise ContentError(path, line, f"{where}: [[{'=' if is_output else ''}{name}]] sits inside math; put it outside $...$")
        kind = "out" if is_output else "var"
        out = out.replace(f"XPLR{i}Q", f'<span class="xp-{kind}" data-{kind}="{name}">…</span>', 1)
    return {"text": out, "config": explorables.config(fields)}


#: Per element type: the checks beyond field names, returning the rendered parts they add.
_ELEMENT_HTML: dict[str, Callable[[Path, int, str, dict[str, Any]], dict[str, Any]]] = {
    "check": _check_html,
    "checkpoint": _checkpoint_html,
    "derivation": _derivation_html,
    "design": _design_html,
    "simulation": _named_html("sim"),
    "break-it": _named_html("lab"),
    "build-it": _named_html("exercise"),
    "listing": _listing_html,
    "recap": _recap_html,
    "sources": _sources_html,
    "figure": _figure_html,
    "predict": _predict_html,
    "explore": _explore_html,
}


def _validate_element(path: Path, line: int, etype: str, eid: str, fields: Any) -> Element:
    schema = _SCHEMAS[etype]
    where = f"{etype} {eid!r}"
    _check_field_names(path, line, where, schema, fields)
    out: dict[str, Any] = {k: render_text(path, line, f"{where} field {k!r}", fields[k]) for k in schema.text if k in fields}
    if etype in _ELEMENT_HTML:
        out.update(_ELEMENT_HTML[etype](path, line, where, fields))
    return Element(id=eid, type=etype, line=line, fields=fields, html=out)


def _count(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__


def _resolve_listing(path: Path, line: int, where: str, fields: dict[str, Any]) -> str | None:
    """The listed source code, or None when it is still to come (`coming_with`)."""
    has_object, has_region = "object" in fields, "region" in fields
    if has_object == has_region:
        raise ContentError(path, line, f"{where} needs exactly one of 'object' or 'region' (+ 'file')")
    try:
        if has_object:
            return _object_source(fields["object"])
        if "file" not in fields:
            raise LookupError("a region listing needs 'file' (e.g. straightline/training.py)")
        return _region_source(fields["file"], fields["region"])
    except LookupError as exc:
        if fields.get("coming_with"):
            return None
        raise ContentError(path, line, f"{where}: {exc}") from None


def _object_source(dotted: str) -> str:
    if not isinstance(dotted, str) or not dotted.startswith("straightline."):
        raise LookupError(f"object {dotted!r} must be a dotted name inside straightline")
    # Read the definition from the module's file without importing it: importing toolkit modules
    # pulls in torch, which would cost the app seconds at every start.
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        base = _PACKAGE_ROOT.parent.joinpath(*parts[:i])
        file = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if file.is_file():
            found = _static_source(file, parts[i:])
            if found is not None:
                return found
            break
    module_name, _, attr = dotted.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise LookupError(f"object {dotted!r} does not exist in the toolkit") from None
    return inspect.getsource(obj).rstrip() + "\n"


def _static_source(file: Path, names: list[str]) -> str | None:
    """The source of the top-level function/class `names[0]` (or a member `names[1:]` of it) in
    `file`, decorators included, as `inspect.getsource` gives it; None when not defined there."""
    import ast
    import textwrap

    text = file.read_text(encoding="utf-8")
    try:
        body: list[ast.stmt] = ast.parse(text).body
    except SyntaxError:
        return None
    node: ast.stmt | None = None
    for name in names:
        node = next(
            (
                n
                for n in body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
            ),
            None,
        )
        if node is None:
            return None
        body = node.body if isinstance(node, ast.ClassDef) else []
    assert node is not None and node.end_lineno is not None
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    lines = text.splitlines()[start - 1 : node.end_lineno]
    return textwrap.dedent("\n".join(lines)).rstrip() + "\n"


def _region_source(file: str, region: str) -> str:
    if not isinstance(file, str) or not file.startswith("straightline/") or ".." in file:
        raise LookupError(f"file {file!r} must be a path inside the package, like straightline/training.py")
    source_path = _PACKAGE_ROOT.parent / file
    if not source_path.is_file():
        raise LookupError(f"file {file!r} does not exist")
    lines = source_path.read_text().splitlines()
    start = next((i for i, s in enumerate(lines) if s.strip() == f"# listing: {region}"), None)
    if start is None:
        raise LookupError(f"region {region!r} is not marked in {file} ('# listing: {region}')")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == "# end listing"), None)
    if end is None:
        raise LookupError(f"region {region!r} in {file} has no '# end listing' line")
    body = lines[start + 1 : end]
    indent = min((len(s) - len(s.lstrip()) for s in body if s.strip()), default=0)
    return "\n".join(s[indent:] for s in body).rstrip() + "\n"


def _parse_body(path: Path, body: str, offset: int) -> tuple[Any, dict[str, Any], list]:
    """The markdown parser, its environment and the body's tokens."""
    parser = md.make_parser()
    env: dict[str, Any] = {}
    try:
        tokens = parser.parse(body, env)
    except md.MathError as exc:  # pragma: no cover - math renders at render time, not parse time
        raise ContentError(path, offset + 1, str(exc)) from None
    return parser, env, tokens


def _render_section(path: Path, offset: int, parser: Any, env: dict[str, Any], pending: list) -> Section:
    """The prose tokens between two elements rendered as one section."""
    try:
        return Section(parser.renderer.render(pending, parser.options, env))
    except md.MathError as exc:
        # the line of the block that holds the formula, else the section's first line
        lines = [t.map[0] for t in pending if t.map and exc.tex and exc.tex in t.content]
        lines += [t.map[0] for t in pending if t.map]
        raise ContentError(path, offset + (lines[0] if lines else 0) + 1, str(exc)) from None


def _toc_entry(path: Path, line: int, tok: Any, inline: Any) -> tuple[int, str, str] | None:
    """(level, id, text) of a ## or ### heading for the table of contents; None for deeper ones."""
    level = int(tok.tag[1])
    if level == 1:
        raise ContentError(path, line, "use ## for sections: the chapter title comes from the front matter")
    if level == 2 or level == 3:
        return level, str(tok.attrs.get("id", "")), _plain(inline.content)
    return None


def _directive(path: Path, line: int, tok: Any, seen: set[str]) -> tuple[str, str, Any]:
    """(type, id, fields) of a {type} id fence; records the id in `seen` (ids are unique)."""
    im = _INFO.match(tok.info.strip())
    if not im:
        raise ContentError(path, line, f"directive info {tok.info.strip()!r} must be '{{type}} id'")
    etype, eid = im.group(1), im.group(2)
    if etype not in _SCHEMAS:
        raise ContentError(path, line, f"unknown element type {etype!r} (known: {', '.join(_SCHEMAS)})")
    if not _ID.match(eid):
        raise ContentError(path, line, f"element id {eid!r} must match [a-z0-9-]+")
    if eid in seen:
        raise ContentError(path, line, f"element id {eid!r} is used twice")
    seen.add(eid)
    try:
        return etype, eid, yaml.safe_load(tok.content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        yline = line + 1 + (mark.line if mark else 0)
        raise ContentError(path, yline, f"{etype} {eid!r}: invalid YAML: {exc}") from None


def _chapter_blocks(
    path: Path, offset: int, parser: Any, env: dict[str, Any], tokens: list, number: int
) -> tuple[list[Section | Element], list[tuple[int, str, str]]]:
    """The chapter's sections and elements in order, and its table of contents (level, id, text)."""
    blocks: list[Section | Element] = []
    toc: list[tuple[int, str, str]] = []
    pending: list = []
    seen: set[str] = set()

    def flush() -> None:
        if pending:
            blocks.append(_render_section(path, offset, parser, env, pending))
            pending.clear()

    for i, tok in enumerate(tokens):
        line = offset + (tok.map[0] + 1 if tok.map else 1)
        if tok.type == "heading_open" and (entry := _toc_entry(path, line, tok, tokens[i + 1])) is not None:
            toc.append(entry)
        if tok.type == "fence" and tok.info.strip().startswith("{"):
            etype, eid, fields = _directive(path, line, tok, seen)
            flush()
            element = _validate_element(path, line, etype, eid, fields)
            element.chapter = number
            blocks.append(element)
            if etype in _END_TOC:
                toc.append((2, eid, _END_TOC[etype]))
            continue
        pending.append(tok)
    flush()
    return blocks, toc


def load_chapter(path: Path) -> Chapter:
    path = Path(path)
    m = _FILE.match(path.name)
    if not m:
        raise ContentError(path, 1, "chapter files are named NN-slug.md (e.g. 00-paths.md)")
    try:
        text = quotes.substitute(path.read_text(encoding="utf-8"))
    except quotes.QuoteError as exc:
        raise ContentError(path, exc.line, str(exc)) from None
    meta, body, offset = _split_front_matter(path, text)
    _check_meta(path, meta, int(m.group(1)))
    try:
        body, _sources = references.cite(body)
    except references.CitationError as exc:
        raise ContentError(path, offset + exc.line, exc.message) from None
    parser, env, tokens = _parse_body(path, body, offset)
    blocks, toc = _chapter_blocks(path, offset, parser, env, tokens, meta["number"])
    _check_chapter_end(path, offset + max(1, len(body.splitlines())), blocks)
    _check_predict_links(path, [b for b in blocks if isinstance(b, Element)])
    return Chapter(
        number=meta["number"],
        slug=meta["slug"],
        title=meta["title"].strip(),
        summary=meta["summary"].strip(),
        minutes=meta["minutes"],
        path=path,
        blocks=blocks,
        toc=toc,
    )


def _check_chapter_end(path: Path, last_line: int, blocks: list[Section | Element]) -> None:
    """A recap and then the sources close the chapter, once each (required when
    REQUIRE_RECAP_AND_SOURCES; checked whenever present)."""
    content = [b for b in blocks if not (isinstance(b, Section) and not b.html.strip())]
    for etype, example in (("recap", "cN-recap"), ("sources", "cN-sources")):
        found = [b for b in content if isinstance(b, Element) and b.type == etype]
        if len(found) > 1:
            raise ContentError(path, found[1].line, f"a chapter has one {{{etype}}} block; this is a second one")
        if not found and REQUIRE_RECAP_AND_SOURCES:
            raise ContentError(path, last_line, f"the chapter has no {{{etype}}} block (end it with ```{{{etype}}} {example})")
    last = len(content) - 1
    for i, block in enumerate(content):
        if _is_sources(block) and i != last:
            raise ContentError(path, block.line, "the sources block must be the chapter's last block")
    for i, block in enumerate(content):
        if isinstance(block, Element) and block.type == "recap" and i != last and not (i == last - 1 and _is_sources(content[last])):
            raise ContentError(path, block.line, "the recap closes the chapter: only the sources block may follow it")


def _is_sources(block: Section | Element) -> bool:
    return isinstance(block, Element) and block.type == "sources"
def _check_predict_links(path: Path, elements: list[Element]) -> None:
    """Each `{predict}` names a simulation element of its chapter running its rule's simulation."""
    by_id = {e.id: e for e in elements}
    for e in elements:
        if e.type != "predict":
            continue
        target, wanted = by_id.get(e.fields["sim"]), predictions.RULES[e.fields["rule"]].sim
        if target is None or target.type != "simulation" or target.fields.get("sim") != wanted:
            raise ContentError(
                path, e.line, f"predict {e.id!r}: sim {e.fields['sim']!r} must be the id of a {wanted!r} simulation in this chapter"
            )


def _plain(inline: str) -> str:
    return re.sub(r"[*_`]", "", inline)


def load_course(directory: Path | str | None = None) -> Course:
    directory = Path(directory) if directory is not None else DEFAULT_CHAPTERS_DIR
    files = sorted(p for p in directory.glob("*.md"))
    if not files:
        raise ContentError(directory, 0, "no chapter files (NN-slug.md) found")
    chapters = [load_chapter(p) for p in files]
    numbers = [c.number for c in chapters]
    if numbers != list(range(len(chapters))):
        raise ContentError(directory, 0, f"chapters must be numbered 0..{len(chapters) - 1}, found {numbers}")
    ids: dict[str, Path] = {}
    slugs: set[str] = set()
    for chapter in chapters:
        if chapter.slug in slugs:
            raise ContentError(chapter.path, 2, f"slug {chapter.slug!r} is used by another chapter")
        slugs.add(chapter.slug)
        for element in chapter.elements:
            if element.id in ids:
                raise ContentError(
                    chapter.path, element.line, f"element id {element.id!r} is also used in {ids[element.id].name}"
                )
            ids[element.id] = chapter.path
    return Course(chapters)


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "check":
        print("usage: python -m straightline.course.content check [DIRECTORY]", file=sys.stderr)
        return 2
    try:
        course = load_course(argv[1] if len(argv) > 1 else None)
    except ContentError as exc:
        print(exc, file=sys.stderr)
        return 1
    for ch in course.chapters:
        kinds: dict[str, int] = {}
        for e in ch.elements:
            kinds[e.type] = kinds.get(e.type, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        print(f"{ch.path.name}: chapter {ch.number} {ch.title!r}: {summary}")
    print(f"ok: {len(course.chapters)} chapters, {len(course.elements)} elements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
