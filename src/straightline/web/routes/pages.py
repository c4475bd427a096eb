"""Pages: home, chapters, one element, progress.

These handlers are `async def` and read the learner's state inline: one indexed SELECT (well under
a millisecond) is cheaper than the hop to a worker thread, and a page is then rendered from
pre-rendered parts without blocking for long.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ...course.progress import chapter_progress, describe, locks
from ..responses import wants_fragment, wants_json
from ..deps import Ctx, chapter_of, learner_id, learner_states

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse, summary="Home: the chapter list with progress")
async def home(request: Request, ctx: Ctx) -> HTMLResponse:
    return HTMLResponse(ctx.renderer.home(await learner_states(ctx, learner_id(request))))


@router.get(
    "/chapters/{slug}",
    response_class=HTMLResponse,
    summary="A chapter with the learner's state merged in",
    responses={404: {"description": "no chapter with this slug"}},
)
async def chapter_page(slug: str, request: Request, ctx: Ctx) -> HTMLResponse:
    chapter = ctx.course.chapter(slug)
    if chapter is None:
        known = ", ".join(c.slug for c in ctx.course.chapters)
        raise HTTPException(404, f"There is no chapter {slug!r}. The chapters are: {known}.")
    learner = learner_id(request)
    return HTMLResponse(ctx.renderer.chapter_page(chapter, await learner_states(ctx, learner), learner=learner))


@router.get(
    "/elements/{element_id}",
    summary="One element: its HTML fragment (X-Straightline-Fragment: 1), its state (Accept: application/json), "
    "or a redirect to it in its chapter",
    responses={
        200: {
            "description": "the element's state (Accept: application/json) or its HTML (X-Straightline-Fragment: 1)",
            "content": {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}},
        },
        303: {"description": "redirect to the element in its chapter"},
        404: {"description": "no element with this id"},
    },
)
async def element(element_id: str, request: Request, ctx: Ctx) -> Response:
    el = ctx.course.elements.get(element_id)
    if el is None:
        raise HTTPException(404, f"There is no element {element_id!r} in this course.")
    chapter = chapter_of(ctx, el)
    if not (wants_json(request) or wants_fragment(request)):
        return RedirectResponse(f"/chapters/{chapter.slug}#{el.id}", status_code=303)
    learner = learner_id(request)
    states = await learner_states(ctx, learner)
    locked_by = locks(chapter, states).get(el.id)
    st = states.get(el.id)
    if wants_json(request):
        return JSONResponse(
            {
                "element": el.id,
                "type": el.type,
                "chapter": chapter.slug,
                "status": "locked" if locked_by else (st.status if st else "new"),
                "description": describe(el, st),
                "state": st.state if st else None,
            }
        )
    progress = chapter_progress(chapter, states)
    return HTMLResponse(
        ctx.renderer.element(el, st, locked_by=locked_by, learner=learner),
        headers={"X-Chapter-Progress": f"{progress.done}/{progress.total}"},
    )


@router.get("/progress", response_class=HTMLResponse, summary="Every interactive element and its state")
async def progress_page(
    request: Request,
    ctx: Ctx,
    imported: Annotated[int | None, Query(ge=0, description="shown after an import: how many elements")] = None,
) -> HTMLResponse:
    message = None
    if imported is not None:
        message = f"Imported your progress: {imported} element{'s' if imported != 1 else ''} restored."
    return HTMLResponse(ctx.renderer.progress(await learner_states(ctx, learner_id(request)), message=message))
