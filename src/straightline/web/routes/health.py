"""Liveness: the course is loaded and the database answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Course loaded and database reachable")
def healthz(ctx: Ctx) -> JSONResponse:
    """`simulations`: idle, loading, warming (the course's own simulations being precomputed),
    ready or error; it never starts them."""
    body = {
        "chapters": len(ctx.course.chapters),
        "elements": len(ctx.course.elements),
        "database": ctx.store.dialect,
        "simulations": ctx.sims.state,
    }
    try:
        ctx.store.ping()
    except Exception as exc:  # report, do not crash: this is what a health check is for
        return JSONResponse({"status": "error", "error": type(exc).__name__, **body}, status_code=503)
    return JSONResponse({"status": "ok", **body})
