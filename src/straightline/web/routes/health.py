"""Liveness: the course is loaded and the database answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ..app import AppContext
from . import context

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Course loaded and database reachable")
def healthz(ctx: Annotated[AppContext, Depends(context)]) -> JSONResponse:
    body = {"chapters": len(ctx.course.chapters), "elements": len(ctx.course.elements), "database": ctx.store.dialect}
    try:
        ctx.store.ping()
    except Exception as exc:  # report, do not crash: this is what a health check is for
        return JSONResponse({"status": "error", "error": type(exc).__name__, **body}, status_code=503)
    return JSONResponse({"status": "ok", **body})
