"""The course web app: `create_app(settings)` builds it.

At start-up the course is loaded and validated (a `ContentError` stops start-up with
`file:line: what is wrong`), the progress store is opened and migrated, and every chapter is
pre-rendered. Routes live in `web/routes/`; see `docs/` or `/openapi.json` for the list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..course.content import Course
from ..course.store import ProgressStore
from .headers import SecurityHeadersMiddleware
from .hosts import HostMiddleware
from .identity import LearnerCookies, LearnerMiddleware
from .limits import BodyLimitMiddleware
from .openapi import document_errors
from .render import STATIC_DIR, Renderer
from .responses import error_response
from .settings import Settings
from .textcheck import TextHygieneMiddleware

__all__ = ["AppContext", "create_app"]


@dataclass
class AppContext:
    """What the routes share; reachable as `request.app.state.ctx`."""

    settings: Settings
    course: Course
    store: ProgressStore
    renderer: Renderer
    cookies: LearnerCookies
    grader: Any = None  # straightline.grader.Grader (web/grading.py), started by the lifespan


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
    if course is None:
        from .course_cache import load_course_cached

        course = load_course_cached(settings.content_dir, settings.data_dir / "cache")
    store = ProgressStore(settings.database_url)
    ctx = AppContext(
        settings=settings,
        course=course,
        store=store,
        renderer=Renderer(course, experiments_dir=settings.experiments_dir, cache_dir=settings.data_dir / "cache"),
        cookies=LearnerCookies(
            settings.secret_key,
            name=settings.cookie_name,
            max_age_s=settings.cookie_max_age_s,
            secure=settings.cookie_secure,
        ),
    )

    from .sim_runtime import SimRuntime

    sims = SimRuntime.for_course(course)  # the shipped models load in the background at start-up

    from .grading import attach_grader, renew_grader, start_grader

    attach_grader(ctx)  # Build-It grading: sandboxed workers on the grader's own thread

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        def start_background() -> None:
            sims.start()  # idempotent: a simulation request that comes first starts it itself
            start_grader(ctx)  # likewise started by the first submission

        # The background work (torch import, shipped models, warm sandboxed workers) competes for
        # the CPU and the interpreter lock with the first page: it starts a moment after the
        # server is up, so the first page does not wait for it.
        renew_grader(ctx)  # an app started again gets a fresh grader at once (cheap: no processes yet)
        later = asyncio.get_running_loop().call_later(settings.background_start_s, start_background)
        yield
        later.cancel()
        sims.close()
        await asyncio.to_thread(ctx.grader.close)
        store.close()

    app = FastAPI(
        title="Understand Flow Matching",
        summary="The straightline course app: chapters, exercises and per-learner progress.",
        version="1",
        docs_url=None,  # the interactive docs pages load scripts from a CDN; the schema stays
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.sims = sims
    document_errors(app)

    from .routes import buildit, elements, health, pages, sims as sim_routes, transfer

    app.include_router(pages.router)
    app.include_router(elements.router)
    app.include_router(buildit.router)
    app.include_router(transfer.router)
    app.include_router(health.router)
    app.include_router(sim_routes.router)
    app.mount("/static", _CachedStatic(directory=STATIC_DIR), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else STATUS_MESSAGES.get(exc.status_code, "Error.")
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"There is no page at {request.url.path}."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        return error_response(request, ctx, exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        fields = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            name = ".".join(loc) or "request"
            fields.append(name)
            problems.append(f"field {name!r}: {err.get('msg', 'invalid')}")
        return error_response(request, ctx, 422, "; ".join(problems), field=", ".join(fields))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(
            request, ctx, 500, "The server failed to handle this request; what you saved before is unchanged."
        )

    def too_large(scope: Scope, limit: int) -> Response:
        return error_response(
            Request(scope),
            ctx,
            413,
            f"The request body is larger than {limit // 1024} KiB, the limit for {scope['path']}; nothing was saved.",
        )

    app.add_middleware(LearnerMiddleware, cookies=ctx.cookies)
    app.add_middleware(TextHygieneMiddleware, refuse=lambda scope, field, message: error_response(Request(scope), ctx, 422, message, field=field))
    app.add_middleware(BodyLimitMiddleware, limit_for=settings.body_limit_for, too_large=too_large)
    app.add_middleware(SecurityHeadersMiddleware)
    from .hosts import host_middleware_options

    app.add_middleware(HostMiddleware, **host_middleware_options(settings, ctx))  # outermost: runs first
    return app


STATUS_MESSAGES = {405: "That method is not allowed here."}
