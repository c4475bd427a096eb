"""Export and import of a learner's progress (JSON; format in `course/transfer.py`)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...course.transfer import ImportFileError, export_progress, parse_import
from ..responses import wants_json
from ..deps import Ctx, learner_id, learner_states, same_origin

router = APIRouter(tags=["progress"])


@router.get(
    "/progress/export",
    summary="Download the learner's progress as JSON (format straightline-progress v1)",
    responses={200: {"description": "the learner's progress file", "content": {"application/json": {"schema": {"type": "object"}}}}},
    response_class=Response,
)
def export(request: Request, ctx: Ctx) -> Response:
    learner = learner_id(request)
    data = export_progress(ctx.store.states(learner), ctx.store.attempts(learner))
    filename = f"straightline-progress-{date.today().isoformat()}.json"
    return Response(
        json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary", "description": "an exported progress file"}},
                    "required": ["file"],
                }
            }
        },
    }
}


async def _upload(request: Request) -> bytes:
    """The one uploaded file of the multipart field `file`; ImportFileError when absent or repeated."""
    form = await request.form()
    files = form.getlist("file")
    if len(files) > 1:
        raise ImportFileError(f"the field 'file' is given {len(files)} times: upload one progress file")
    if not files or isinstance(files[0], str):
        raise ImportFileError("the field 'file' is missing: choose a progress file (.json) to upload")
    return await files[0].read()


@router.post(
    "/progress/import",
    dependencies=[Depends(same_origin)],
    summary="Replace the learner's progress with an exported file (multipart field 'file'); "
    "an invalid file changes nothing",
    responses={
        200: {"description": "imported (JSON clients): how many elements and attempts"},
        303: {"description": "imported; redirect to the progress page"},
        400: {"description": "the multipart body does not parse"},
        413: {"description": "the file is larger than the import limit"},
        422: {"description": "invalid file, or the field 'file' missing or given twice; the message says where"},
    },
    openapi_extra=_IMPORT_BODY,
)
async def import_progress(request: Request, ctx: Ctx) -> Response:
    learner = learner_id(request)
    try:
        raw = await _upload(request)
        plan = await run_in_threadpool(parse_import, raw, ctx.course)
    except ImportFileError as err:
        message = str(err)
        if wants_json(request):
            return JSONResponse({"error": {"status": 422, "field": "file", "message": message}}, status_code=422)
        states = await learner_states(ctx, learner)
        page = ctx.renderer.progress(states, error=message[:1].upper() + message[1:] + ".")
        return HTMLResponse(page, status_code=422)
    await run_in_threadpool(ctx.store.replace, learner, plan.states, plan.attempts)
    if wants_json(request):
        return JSONResponse({"imported": {"elements": len(plan.states), "attempts": len(plan.attempts)}})
    return RedirectResponse(f"/progress?imported={len(plan.states)}", status_code=303)
