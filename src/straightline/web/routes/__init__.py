"""HTTP routes: pages (GET), element actions (POST), progress export/import, health."""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ...course.store import ElementState

from ...course.content import Chapter, Element
from ..app import AppContext
from ..hosts import is_same_origin

__all__ = ["chapter_of", "context", "learner_id", "learner_states", "same_origin"]


# Dependencies are `async def` so FastAPI calls them inline instead of in a worker thread.
async def context(request: Request) -> AppContext:
    return request.app.state.ctx


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
