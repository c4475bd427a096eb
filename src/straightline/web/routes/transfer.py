"""Export and import of a learner's progress (JSON; format in `course/transfer.py`)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ...course.transfer import ImportFileError, export_progress, parse_import
from ..app import AppContext
from ..responses import wants_json
from . import context, learner_id, same_origin

router = APIRouter(tags=["progress"])
Ctx = Annotated[AppContext, Depends(context)]


@router.get("/progress/export", summary="Download the learner's progress as JSON (format straightline-progress v1)")
def export(request: Request, ctx: Ctx) -> Response:
    learner = learner_id(request)
    data = export_progress(ctx.store.states(learner), ctx.store.attempts(learner))
    filename = f"straightline-progress-{date.today().isoformat()}.json"
    return Response(
        json.dumps(data, indent=1, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.post(
    "/progress/import",
    dependencies=[Depends(same_origin)],
    summary="Replace the learner's progress with an exported file (multipart field 'file'); "
    "an invalid file changes nothing",
    responses={303: {"description": "imported; redirect to the progress page"}, 422: {"description": "invalid file"}},
)
def import_progress(request: Request, ctx: Ctx, file: Annotated[UploadFile | None, File()] = None) -> Response:
    learner = learner_id(request)
    try:
        if file is None or isinstance(file, str):
            raise ImportFileError("the field 'file' is missing: choose a progress file (.json) to upload")
        plan = parse_import(file.file.read(), ctx.course)
    except ImportFileError as err:
        message = str(err)
        if wants_json(request):
            return JSONResponse({"error": {"status": 422, "field": "file", "message": message}}, status_code=422)
        page = ctx.renderer.progress(ctx.store.states(learner), error=message[:1].upper() + message[1:] + ".")
        return HTMLResponse(page, status_code=422)
    ctx.store.replace(learner, plan.states, plan.attempts)
    if wants_json(request):
        return JSONResponse({"imported": {"elements": len(plan.states), "attempts": len(plan.attempts)}})
    return RedirectResponse(f"/progress?imported={len(plan.states)}", status_code=303)
