"""HTML for every page, with the course pre-rendered once at start-up.

A chapter page is made when the app starts: its frame (header, table of contents, pager) and its
prose and non-interactive elements as finished UTF-8 bytes, its interactive elements as `Element`s.
A request renders only the interactive elements with the learner's state (cached per element and
state, since most learners share a few states) and joins the parts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ..course.content import Chapter, Course, Element
from ..course.experiments import Experiment, load_experiment
from ..course.markdown import highlight_code
from ..course.progress import (
    AVAILABLE_TYPES,
    COMING_WITH,
    RATINGS,
    InputError,
    chapter_progress,
    course_progress,
    describe,
    locks,
    open_gates,
)
from ..course.simparams import COMING_WITH_SIM, SIM_TITLES, PARAMS as SIM_PARAMS
from ..course.store import ElementState

__all__ = ["ChapterView", "Renderer", "TYPE_LABELS", "element_action_url"]

#: simulations and Break-It labs the page can run (the API's, and live training)
SIM_NAMES = frozenset(SIM_PARAMS) | {"live-training"}
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

TYPE_LABELS: dict[str, str] = {
    "check": "Check",
    "checkpoint": "Checkpoint",
    "derivation": "Derivation",
    "pattern": "Pattern recognition",
    "adversarial": "Adversarial",
    "design": "Design challenge",
    "simulation": "Simulation",
    "build-it": "Build it",
    "break-it": "Break-it lab",
    "listing": "Code from the toolkit",
    "recap": "Recap",
    "sources": "Sources",
}
_SINGLE_P = re.compile(r"^\s*<p>((?:(?!</?p>).)*)</p>\s*$", re.S)
_HEADING = re.compile(r"<h([23])[ >]")


def element_action_url(element_id: str, action: str) -> str:
    return f"/elements/{element_id}/{action}"


@lru_cache(maxsize=8192)
def inline(html: str) -> Markup:
    """A one-paragraph HTML block as its inline content (for labels and titles)."""
    m = _SINGLE_P.match(html)
    return Markup(m.group(1) if m else html)


# An inline formula and the punctuation right after it stay on one line ("x_1 - z." not "x_1 - z" / ".")
_MATH_PUNCT = re.compile(r'(<span class="math inline"><math(?:(?!</math>).)*</math></span>)([.,;:!?)\]]+)', re.S)
# A formula cut into pieces (so it can wrap) keeps the punctuation with its last piece.
_PIECE_PUNCT = re.compile(r'(<span class="math-piece"><math(?:(?!</math>).)*</math></span>)(</span>)([.,;:!?)\]]+)', re.S)
# An explanation that opens with its own verdict ("Right. ...") needs none from the template.
_OWN_VERDICT = re.compile(r"^\s*<p>(?:<strong>)?(?:Right|Correct|Yes|Exactly|Wrong|Incorrect|No|Not quite)\b")


def glue_punctuation(html: str) -> str:
    html = _PIECE_PUNCT.sub(r'<span class="nobr">\1\3</span>\2', html)
    return _MATH_PUNCT.sub(r'<span class="nobr">\1\2</span>', html)


def _markup(value: Any) -> Any:
    if isinstance(value, str):
        return Markup(glue_punctuation(value))
    if isinstance(value, list):
        return [_markup(v) for v in value]
    if isinstance(value, dict):
        return {k: _markup(v) for k, v in value.items()}
    return value


class _State(dict):
    """A learner's element state for templates: a missing key reads as None."""

    def __missing__(self, key: str) -> None:
        return None


_FIRST_P = re.compile(r"<p>(.*?)</p>", re.S)
_LINK = re.compile(r"</?a\b[^>]*>")


def _label(element: Element, html: dict[str, Any]) -> Markup:
    """A one-line name for an element (progress page): the first paragraph of its title,
    question, prompt or caption, rendered (math included), without links."""
    for key in ("title", "question", "prompt", "caption"):
        value = html.get(key)
        if value:
            m = _FIRST_P.search(value)
            if m:
                return Markup(_LINK.sub("", m.group(1)))
    return Markup.escape(element.label)


@dataclass
class ChapterView:
    """A chapter page prepared at start-up.

    `frame` is the finished page, UTF-8 encoded, split around two per-learner slots:
    frame[0] + status + frame[1] + body + frame[2]; `parts` is the body: finished HTML (bytes)
    and the interactive elements, rendered per request.
    """

    chapter: Chapter
    parts: list[bytes | Element]
    prev: Chapter | None
    next: Chapter | None
    frame: tuple[bytes, bytes, bytes] = (b"", b"", b"")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # templates never show a state's time
_STATUS_SLOT = "\x00status\x00"
_BODY_SLOT = "\x00body\x00"


def _environment(cache_dir: Path | None) -> Environment:
    """The templates' environment; compiled templates are kept in `cache_dir` between starts."""
    bytecode_cache = None
    if cache_dir is not None:
        try:
            (cache_dir / "templates").mkdir(parents=True, exist_ok=True)
            bytecode_cache = FileSystemBytecodeCache(str(cache_dir / "templates"))
        except OSError:  # a read-only data dir: compile in memory as before
            bytecode_cache = None
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        bytecode_cache=bytecode_cache,
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        auto_reload=False,  # templates are package data: compile once
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _element_html(element: Element) -> dict[str, Any]:
    """The element's rendered fields as markup, with what its template adds (verdicts, highlighting)."""
    html = _markup(element.html)
    if element.type == "check":
        for option in html["options"]:
            option["own_verdict"] = bool(_OWN_VERDICT.match(option["explanation"]))
    if element.type == "listing" and element.html.get("code") is not None:
        html["code"] = Markup(highlight_code(element.html["code"], "python"))
    return html


class Renderer:
    """Renders pages for one course; build once per app."""

    def __init__(self, course: Course, *, experiments_dir: Path | None = None, cache_dir: Path | None = None):
        """`cache_dir`: where compiled templates are kept between starts (Jinja's bytecode cache;
        compiling every template costs a second or two of a cold start)."""
        self.course = course
        self.env = _environment(cache_dir)
        self.static_versions = {
            p.relative_to(STATIC_DIR).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:12]
            for p in STATIC_DIR.rglob("*")
            if p.is_file()
        }
        self.env.globals.update(
            static_url=self.static_url,
            type_labels=TYPE_LABELS,
            ratings=RATINGS,
            action_url=element_action_url,
            inline=inline,
            course=course,
            sim_names=SIM_NAMES,
            sim_coming=COMING_WITH_SIM,
            sim_titles=SIM_TITLES,
        )
        self._element_templates = {t: self.env.get_template(f"elements/{t}.html") for t in TYPE_LABELS}
        self._pages = {name: self.env.get_template(f"{name}.html") for name in ("home", "chapter", "progress", "error")}
        self._status = self.env.get_template("_chapter_status.html")
        self._html = {element.id: _element_html(element) for element in course.elements.values()}
        self.experiments: dict[str, Experiment | None] = {
            key: load_experiment(key, experiments_dir)
            for element in course.elements.values()
            if element.type == "adversarial" and (key := element.fields.get("experiment"))
        }
        self._heading_level: dict[str, int] = {}
        self.labels = {e.id: _label(e, self._html[e.id]) for e in course.elements.values()}
        self.env.globals["labels"] = self.labels
        self.views = {c.slug: self._prerender(c) for c in course.chapters}

    # --- helpers -------------------------------------------------------------------------------

    def static_url(self, name: str) -> str:
        version = self.static_versions.get(name)
        return f"/static/{name}" + (f"?v={version}" if version else "")

    def _prerender(self, chapter: Chapter) -> ChapterView:
        parts: list[bytes | Element] = []
        level = 2
        for block in chapter.blocks:
            if isinstance(block, Element):
                self._heading_level[block.id] = min(level + 1, 5)
                if block.type in AVAILABLE_TYPES:
                    parts.append(block)
                else:
                    parts.append(self.element(block, None).encode())
            else:
                found = _HEADING.findall(block.html)
                if found:
                    level = int(found[-1])
                parts.append(glue_punctuation(block.html).encode())
        prev, nxt = self.course.neighbours(chapter)
        view = ChapterView(chapter, parts, prev, nxt)
        page = self._pages["chapter"].render(
            page="chapter", chapter=chapter, view=view, status_html=Markup(_STATUS_SLOT), body=Markup(_BODY_SLOT)
        )
        head, rest = page.split(_STATUS_SLOT)
        middle, tail = rest.split(_BODY_SLOT)
        view.frame = (head.encode(), middle.encode(), tail.encode())
        return view

    # --- fragments -----------------------------------------------------------------------------

    def element(
        self,
        element: Element,
        state: ElementState | None,
        *,
        locked_by: Element | None = None,
        error: InputError | None = None,
        draft: Mapping[str, str] | None = None,
        action: str | None = None,
        learner: str = "",
    ) -> str:
        """One element's HTML for a learner (`error`/`draft`: a refused submission to show again;
        `learner`: whose option order a check shows)."""
        order = self.course.option_order(element.id, learner) if element.type == "check" else None
        if error is None and not draft and (element.type != "build-it" or state is None):
            # Many learners are in the same few states (above all: not started), so the HTML of an
            # (element, state, option order) triple is cached. (Not a Build-It learner's: it holds
            # their own code.)
            key = json.dumps(state.state, sort_keys=True) if state is not None else None
            status = state.status if state is not None else None
            return self._element_cached(element.id, status, key, locked_by.id if locked_by else None, order)
        return self._element(element, state, locked_by=locked_by, error=error, draft=draft, action=action, order=order)

    @lru_cache(maxsize=16384)  # noqa: B019 - one Renderer per app, living as long as the app
    def _element_cached(
        self, element_id: str, status: str | None, state_json: str | None, locked_by_id: str | None, order: tuple[int, ...] | None
    ) -> str:
        element = self.course.elements[element_id]
        state = None
        if state_json is not None and status is not None:
            state = ElementState(element_id, element.type, status, json.loads(state_json), _EPOCH)
        locked_by = self.course.elements[locked_by_id] if locked_by_id else None
        return self._element(element, state, locked_by=locked_by, order=order)

    def _element(
        self,
        element: Element,
        state: ElementState | None,
        *,
        locked_by: Element | None = None,
        error: InputError | None = None,
        draft: Mapping[str, str] | None = None,
        action: str | None = None,
        order: tuple[int, ...] | None = None,
    ) -> str:
        interactive = element.type in AVAILABLE_TYPES
        if locked_by is not None:
            status, status_text = "locked", "locked"
        elif interactive:
            status = state.status if state else "new"
            status_text = describe(element, state)
        else:
            status, status_text = "static", ""
        return self._element_templates[element.type].render(
            el=element,
            h=self._html[element.id],
            s=_State(state.state if state else {}),
            status=status,
            status_text=status_text,
            locked_by=locked_by,
            error=error,
            error_action=action if error else None,
            draft=draft or {},
            hlevel=self._heading_level.get(element.id, 3),
            coming=COMING_WITH.get(element.type),
            experiment=self.experiments.get(element.fields.get("experiment") or ""),
            experiment_coming=COMING_WITH["experiment"],
            order=order or (),
        )

    # --- pages ---------------------------------------------------------------------------------

    def chapter_page(
        self,
        chapter: Chapter,
        states: Mapping[str, ElementState],
        *,
        error_element: Element | None = None,
        error: InputError | None = None,
        draft: Mapping[str, str] | None = None,
        action: str | None = None,
        learner: str = "",
    ) -> bytes:
        """The chapter page for a learner, as UTF-8 bytes (most of it encoded once at start-up)."""
        view = self.views[chapter.slug]
        locked = locks(chapter, states)
        status = self._status.render(
            progress=chapter_progress(chapter, states),
            open_gates=open_gates(self.course, chapter, states),
            error=error,
            error_element=error_element,
        )
        out: list[bytes] = [view.frame[0], status.encode(), view.frame[1]]
        for part in view.parts:
            if isinstance(part, bytes):
                out.append(part)
            elif error_element is not None and part.id == error_element.id:
                html = self.element(
                    part, states.get(part.id), locked_by=locked.get(part.id), error=error, draft=draft, action=action, learner=learner
                )
                out.append(html.encode())
            else:
                out.append(self.element(part, states.get(part.id), locked_by=locked.get(part.id), learner=learner).encode())
        out.append(view.frame[2])
        return b"".join(out)

    def home(self, states: Mapping[str, ElementState]) -> str:
        rows = [(c, chapter_progress(c, states)) for c in self.course.chapters]
        started = [c for c, p in rows if p.done and not p.complete]
        resume = started[0] if started else None
        return self._pages["home"].render(
            page="home", rows=rows, total=course_progress(self.course, states), resume=resume, any_progress=bool(states)
        )

    def progress(
        self,
        states: Mapping[str, ElementState],
        *,
        message: str | None = None,
        error: str | None = None,
    ) -> str:
        chapters = []
        for chapter in self.course.chapters:
            locked = locks(chapter, states)
            items = []
            for element in chapter.elements:
                if not element.interactive:
                    continue
                st = states.get(element.id)
                if element.id in locked:
                    text, status = "locked until you clear the chapter's checkpoint", "locked"
                elif element.type not in AVAILABLE_TYPES:
                    text, status = describe(element, st), "coming"
                else:
                    text, status = describe(element, st), st.status if st else "new"
                items.append((element, status, text, st))
            chapters.append((chapter, chapter_progress(chapter, states), items))
        return self._pages["progress"].render(
            page="progress",
            chapters=chapters,
            total=course_progress(self.course, states),
            message=message,
            error=error,
        )

    def error_page(self, status: int, title: str, message: str) -> str:
        return self._pages["error"].render(page="error", status=status, title=title, message=message)


