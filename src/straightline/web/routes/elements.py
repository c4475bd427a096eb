"""Element actions (POST): answer a check, write a checkpoint answer and rate it, reveal derivation
hints, commit an adversarial explanation, answer the design questions, commit a prediction.

Each route answers a plain form post with a 303 redirect back to the element, an
`X-Straightline-Fragment: 1` request with the element's new HTML, and an `Accept: application/json`
request with its new state. A refused action (missing or bad field, too short an answer, a hint
out of order, a locked element) is answered 422/409 and writes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...course.content import Element
from ...course.progress import InputError, apply, locks
from ..responses import wants_fragment, wants_json
from ..deps import AppContext, Ctx, chapter_of, learner_id, same_origin
from .answer import element_answer

router = APIRouter(tags=["elements"], dependencies=[Depends(same_origin)])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "saved: the element's new state (Accept: application/json) or its new HTML (X-Straightline-Fragment: 1)",
        "content": {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}},
    },
    303: {"description": "saved; redirect back to the element in its chapter (plain form posts)"},
    400: {"description": "the form body does not parse"},
    404: {"description": "no such element, or it is not of this route's type"},
    409: {"description": "not possible yet (locked element, hint out of order, rating before answering)"},
    413: {"description": "request body over 64 KiB"},
    422: {"description": "a field is missing or not accepted (or holds NUL or text that is not UTF-8); the message names it"},
}

#: each route's form fields and what they accept (all required); documented as its request body
_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "check": {"option": {"type": "string", "description": "the option chosen, 1..4"}},
    "checkpoint": {"answer": {"type": "string", "description": "your answer in your own words (at least min_words words)"}},
    "checkpoint/rating": {"rating": {"type": "string", "enum": ["got", "partly", "missed"]}},
    "derivation": {"reveal": {"type": "string", "enum": ["hint-1", "hint-2", "hint-3", "solution"]}},
    "adversarial": {"answer": {"type": "string", "description": "your explanation (at least 8 words)"}},
    "design": {
        "question": {"type": "string", "description": "the question answered, 1..4"},
        "answer": {"type": "string", "description": "your answer (at least 5 words)"},
    },
    "predict": {"guess": {"type": "string", "description": "one of the prediction's outcomes, or a point 'x,y' for a click prediction"}},
}


def _form_body(route: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": _FIELDS[route], "required": list(_FIELDS[route])}
    content = {kind: {"schema": schema} for kind in ("application/x-www-form-urlencoded", "multipart/form-data")}
    return {"requestBody": {"required": True, "content": content}}


async def _post(request: Request, ctx: AppContext, element_id: str, route: str) -> Response:
    """Read the route's form fields (an empty field counts as missing) and act on a worker thread."""
    form = await request.form() if route in _FIELDS else {}
    fields = {name: (form.get(name) or None) for name in _FIELDS.get(route, {})}
    return await run_in_threadpool(_act, request, ctx, element_id, route, fields)


def _element(ctx: AppContext, element_id: str, element_type: str, action: str) -> Element:
    element = ctx.course.elements.get(element_id)
    if element is None:
        raise HTTPException(404, f"There is no element {element_id!r} in this course.")
    if element.type != element_type:
        raise HTTPException(404, f"Element {element_id!r} is a {element.type}; it has no {action!r} action.")
    return element


def _act(request: Request, ctx: AppContext, element_id: str, route: str, form: dict[str, str | None]) -> Response:
    element_type, action = _ROUTES[route]
    element = _element(ctx, element_id, element_type, route)
    chapter = chapter_of(ctx, element)
    learner = learner_id(request)
    states = ctx.store.states(learner)
    before = locks(chapter, states)
    try:
        gate = before.get(element.id)
        if gate is not None:
            raise InputError(
                "element",
                f"this {element.type} is locked until you clear the checkpoint above it ({gate.id})",
                status=409,
            )
        new = ctx.store.update(learner, element.id, element.type, lambda old: apply(element, action, form, old))
    except InputError as err:
        return _refused(request, ctx, element, states, err, form, route)
    states = {**states, element.id: new}
    unlocked = sorted(set(before) - set(locks(chapter, states)))
    return element_answer(request, ctx, element, new, states, {"state": new.state, "unlocked": unlocked}, unlocked=unlocked)


def _refused(request: Request, ctx: AppContext, element: Element, states: dict, err: InputError, form: dict, route: str) -> Response:
    chapter = chapter_of(ctx, element)
    if wants_json(request):
        body = {"status": err.status, "field": err.field, "message": err.message}
        if err.accepted:
            body["accepted"] = err.accepted
        return JSONResponse({"error": body}, status_code=err.status)
    draft = {k: v for k, v in form.items() if isinstance(v, str)}
    learner = learner_id(request)
    locked_by = locks(chapter, states).get(element.id)
    if wants_fragment(request):
        html = ctx.renderer.element(element, states.get(element.id), locked_by=locked_by, error=err, draft=draft, action=route, learner=learner)
        return HTMLResponse(html, status_code=err.status)
    page = ctx.renderer.chapter_page(chapter, states, error_element=element, error=err, draft=draft, action=route, learner=learner)
    return HTMLResponse(page, status_code=err.status)


#: route suffix -> (element type, progress action)
_ROUTES = {
    "check": ("check", "answer"),
    "checkpoint": ("checkpoint", "answer"),
    "checkpoint/rating": ("checkpoint", "rating"),
    "checkpoint/skip": ("checkpoint", "skip"),
    "derivation": ("derivation", "reveal"),
    "adversarial": ("adversarial", "answer"),
    "design": ("design", "answer"),
    "design/reveal": ("design", "reveal"),
    "predict": ("predict", "guess"),
}

#: (route suffix, operation name, summary) of each element action, in the schema's order
_ACTIONS = (
    ("check", "answer_check", "Answer a check: option 1..4"),
    ("checkpoint", "answer_checkpoint", "Answer a checkpoint in free text (at least min_words words); clears the gate"),
    ("checkpoint/rating", "rate_checkpoint", "Rate your checkpoint answer against the model answer: got, partly or missed"),
    ("derivation", "reveal_derivation", "Reveal the next hint (hint-1, hint-2, hint-3, in order) or the full derivation (solution)"),
    ("adversarial", "answer_adversarial", "Commit to an explanation of the scenario (at least 8 words); reveals the explanation"),
    ("design", "answer_design", "Answer design question 1..4 (at least 5 words); reveals that question's reference answer"),
    ("design/reveal", "reveal_design", "Reveal the reference design (after all four questions are answered)"),
    ("checkpoint/skip", "skip_checkpoint",
     "Move on without answering the checkpoint; recorded as skipped (answer it later to clear it)"),
    ("predict", "commit_prediction", "Commit a prediction before its simulation plays (final once committed)"),
)


def _action_route(route: str, name: str):
    async def act(element_id: str, request: Request, ctx: Ctx) -> Response:
        return await _post(request, ctx, element_id, route)

    act.__name__ = act.__qualname__ = name
    return act


for _route, _name, _summary in _ACTIONS:
    router.add_api_route(
        f"/elements/{{element_id}}/{_route}",
        _action_route(_route, _name),
        methods=["POST"],
        responses=_RESPONSES,
        summary=_summary,
        openapi_extra=_form_body(_route) if _route in _FIELDS else None,
    )
