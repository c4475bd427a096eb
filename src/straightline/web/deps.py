"""What the routes share: `AppContext` (one per app) and the FastAPI dependencies that reach it.

Routes import from here, never from web/app.py (which imports the routes): the app is built on
top of this module, not beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ..course.content import Chapter, Course, Element
from ..course.glossary import Glossary
from ..course.search import SearchIndex
from ..course.store import ElementState, ProgressStore
from .hosts import is_same_origin
from .identity import LearnerCookies
from .render import Renderer
from .settings import Settings
from .sim_runtime import SimRuntime

__all__ = ["AppContext", "Ctx", "chapter_of", "context", "learner_id", "learner_states", "same_origin"]


@dataclass
class AppContext:
    """What the routes share; reachable as `request.app.state.ctx` (the `Ctx` dependency)."""

    settings: Settings
    course: Course
    store: ProgressStore
    renderer: Renderer
    cookies: LearnerCookies
    sims: SimRuntime  # the simulations and live training; its models load in the background
    grader: Any = None  # straightline.grader.Grader (web/grading.py), started by the lifespan
    glossary: Glossary | None = None  # the course's glossary.yaml, checked against the course
    search: SearchIndex | None = None  # full-text index of the course, built at start-up


# Dependencies are `async def` so FastAPI calls them inline instead of in a worker thread.
async def context(request: Request) -> AppContext:
    return request.app.state.ctx


Ctx = Annotated[AppContext, Depends(context)]


def learner_id(request: Request) -> str:
    return request.state.learner_id


async def learner_states(ctx: AppContext, learner: str) -> dict[str, ElementState]:
    """The learner's element states. A SQLite read is a local sub-millisecond lookup, done inline;
    a PostgreSQL read waits on the network, so it runs in a worker thread."""
    if ctx.store.dialect == "sqlite":
        return ctx.store.states(learner)
    return await run_in_threadpool(ctx.store.states, learner)


def chapter_of(ctx: AppContext, element: Element) -> Chapter:
    return ctx.course.chapters[element.chapter]


async def same_origin(request: Request) -> None:
    """Refuse requests a page on another site makes on the learner's behalf (CSRF).

    The host compared with is the one `HostMiddleware` validated (web/hosts.py; behind a trusted
    proxy, X-Forwarded-Host), which also refuses cross-site POSTs before any route runs."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.state.host
    if not is_same_origin(origin, host):
        raise HTTPException(403, f"Requests from {origin} may not change progress here (this server is {host}).")
