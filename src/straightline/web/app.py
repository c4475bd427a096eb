"""The course web app: `create_app(settings)` builds it.

At start-up the course is loaded and validated (a `ContentError` stops start-up with
`file:line: what is wrong`), the progress store is opened and migrated, and every chapter is
pre-rendered. Routes live in `web/routes/`; see `docs/` or `/openapi.json` for the list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..course.content import Course
from ..course.glossary import GLOSSARY_FILE, load_glossary
from ..course.search import SearchIndex
from ..course.store import ProgressStore
from .course_cache import load_course_cached
from .deps import AppContext
from .grading import attach_grader, renew_grader, start_grader
from .headers import SecurityHeadersMiddleware
from .hosts import AllowedHosts, HostMiddleware, TrustedProxies
from .identity import LearnerCookies, LearnerMiddleware
from .limits import BodyLimitMiddleware
from .openapi import document_errors
from .render import STATIC_DIR, Renderer
from .responses import error_response
from .routes import buildit, elements, health, pages, retrieval, sims as sim_routes, transfer
from .settings import Settings
from .sim_runtime import SimRuntime
from .textcheck import TextHygieneMiddleware

__all__ = ["AppContext", "create_app"]

STATUS_MESSAGES = {405: "That method is not allowed here."}
ROUTERS = (
    pages.router, elements.router, buildit.router, transfer.router, health.router, sim_routes.router, retrieval.router
)


class _CachedStatic(StaticFiles):
    """Static files; versioned URLs (`?v=hash`, as the templates write them) are cached for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if b"v=" in scope.get("query_string", b""):
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["cache-control"] = "no-cache"
        return response


def create_app(settings: Settings, *, course: Course | None = None) -> FastAPI:
    """The app for `settings`; pass an already loaded `course` to skip loading (tests).

    The course is loaded through a cache in `settings.data_dir / "cache"` keyed by the content and
    the code that renders it, so only the first start after a change renders the Markdown.
    """
    ctx = build_context(settings, course)
    attach_grader(ctx)  # Build-It grading: sandboxed workers on the grader's own thread
    app = FastAPI(
        title="Understand Flow Matching",
        summary="The straightline course app: chapters, exercises and per-learner progress.",
        version="1",
        docs_url=None,  # the interactive docs pages load scripts from a CDN; the schema stays
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_lifespan(ctx),
    )
    app.state.ctx = ctx
    document_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", _CachedStatic(directory=STATIC_DIR), name="static")
    _handle_errors(app)
    _add_middleware(app, ctx)
    return app


def build_context(settings: Settings, course: Course | None = None) -> AppContext:
    """The app's shared state: the course (loaded through the cache unless given), the progress
    store, the renderer, the cookie signer and the simulation runtime (not yet started), the
    glossary (from `glossary.yaml` beside the chapters; a `ContentError` stops start-up) and the
    search index."""
    if course is None:
        course = load_course_cached(settings.content_dir, settings.data_dir / "cache")
    glossary = load_glossary(course.chapters[0].path.parent / GLOSSARY_FILE, course)
    cache_dir = settings.data_dir / "cache"
    cookies = LearnerCookies(
        settings.secret_key, name=settings.cookie_name, max_age_s=settings.cookie_max_age_s, secure=settings.cookie_secure
    )
    return AppContext(
        settings=settings,
        course=course,
        store=ProgressStore(settings.database_url),
        renderer=Renderer(course, experiments_dir=settings.experiments_dir, cache_dir=cache_dir, glossary=glossary),
        cookies=cookies,
        sims=SimRuntime.for_course(course),  # the shipped models load in the background at start-up
        glossary=glossary,
        search=SearchIndex(course),
    )


def _lifespan(ctx: AppContext) -> Callable[[FastAPI], Any]:
    """Start the background work a moment after the server is up; stop it and the store at the end.

    The background work (torch import, shipped models, warm sandboxed workers) competes for the CPU
    and the interpreter lock with the first page: it starts `background_start_s` later, so the first
    page does not wait for it."""

    def start_background() -> None:
        ctx.sims.start()  # idempotent: a simulation request that comes first starts it itself
        start_grader(ctx)  # likewise started by the first submission

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        renew_grader(ctx)  # an app started again gets a fresh grader at once (cheap: no processes yet)
        later = asyncio.get_running_loop().call_later(ctx.settings.background_start_s, start_background)
        yield
        later.cancel()
        ctx.sims.close()
        await asyncio.to_thread(ctx.grader.close)
        ctx.store.close()

    return lifespan


# -- errors: every one answered in the form the client asked for (web/responses.py) ---------------

def _handle_errors(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    message = exc.detail if isinstance(exc.detail, str) else STATUS_MESSAGES.get(exc.status_code, "Error.")
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"There is no page at {request.url.path}."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    headers = getattr(exc, "headers", None)
    return error_response(request, request.app.state.ctx, exc.status_code, message, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = []
    fields = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        name = ".".join(loc) or "request"
        fields.append(name)
        problems.append(f"field {name!r}: {err.get('msg', 'invalid')}")
    return error_response(request, request.app.state.ctx, 422, "; ".join(problems), field=", ".join(fields))


async def _server_error(request: Request, exc: Exception) -> Response:
    message = "The server failed to handle this request; what you saved before is unchanged."
    return error_response(request, request.app.state.ctx, 500, message)


# -- middleware: the last added runs first --------------------------------------------------------

def _add_middleware(app: FastAPI, ctx: AppContext) -> None:
    def refuse_text(scope: Scope, field: str, message: str) -> Response:
        return error_response(Request(scope), ctx, 422, message, field=field)

    def too_large(scope: Scope, limit: int) -> Response:
        message = f"The request body is larger than {limit // 1024} KiB, the limit for {scope['path']}; nothing was saved."
        return error_response(Request(scope), ctx, 413, message)

    app.add_middleware(LearnerMiddleware, cookies=ctx.cookies)
    app.add_middleware(TextHygieneMiddleware, refuse=refuse_text)
    app.add_middleware(BodyLimitMiddleware, limit_for=ctx.settings.body_limit_for, too_large=too_large)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(HostMiddleware, **host_middleware_options(ctx))  # outermost: runs first


def host_middleware_options(ctx: AppContext) -> dict[str, Any]:
    """`HostMiddleware`'s keyword arguments for the app of `ctx`."""
    settings = ctx.settings

    def refuse(scope: Scope, status: int, message: str) -> Response:
        return error_response(Request(scope), ctx, status, message)

    return {
        "allowed": AllowedHosts(settings.allowed_hosts),
        "refuse": refuse,
        "proxies": TrustedProxies(settings.forwarded_allow_ips) if settings.proxy_headers else None,
        "grade_secret": settings.secret_key if settings.unsafe_local_grading else None,
    }
