"""The answer to an element action that was saved, shared by the element and Build-It routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from ...course.content import Element
from ...course.progress import chapter_progress, describe
from ...course.store import ElementState
from ..deps import AppContext, chapter_of, learner_id
from ..responses import wants_fragment, wants_json

__all__ = ["element_answer"]


def element_answer(
    request: Request, ctx: AppContext, element: Element, new: ElementState, states: Mapping[str, ElementState],
    extra: Mapping[str, Any], *, unlocked: Sequence[str] = (),
) -> Response:
    """The element's new state in the form the client asked for: JSON (with `extra` and the
    chapter's progress), the element's new HTML (a fragment; `X-Refresh-Elements` names the
    elements this action unlocked), or a redirect back to the element (a plain form post).

    `states` are the learner's states with `new` already in them."""
    chapter = chapter_of(ctx, element)
    progress = chapter_progress(chapter, states)
    if wants_json(request):
        return JSONResponse({
            "element": element.id,
            "type": element.type,
            "status": new.status,
            "description": describe(element, new),
            **extra,
            "chapter": {"slug": chapter.slug, "done": progress.done, "total": progress.total},
        })
    if wants_fragment(request):
        headers = {"X-Chapter-Progress": f"{progress.done}/{progress.total}"}
        if unlocked:
            headers["X-Refresh-Elements"] = " ".join(unlocked)
        return HTMLResponse(ctx.renderer.element(element, new, learner=learner_id(request)), headers=headers)
    return RedirectResponse(f"/chapters/{chapter.slug}#{element.id}", status_code=303)
