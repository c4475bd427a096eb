"""Finding one's way back: the glossary, full-text search, the final review and the completion page.

GET /glossary                 every symbol and term, with where it is introduced
GET /search?q=                the course's sections and elements that hold every word of q
GET /review?round=N           a round of questions drawn from the checks and gates (course/review.py)
POST /review/{element_id}     answer one: `round` and `option` (a check) or `answer` / `rating`
                              (a checkpoint); stored as a review attempt, no element state changes
GET /complete                 what was covered, time spent, where to go next
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...course.completion import READING_LIST, completion, format_duration
from ...course.content import Element
from ...course.progress import RATINGS, InputError, word_count
from ...course.review import MAX_ROUND, REASONS, draw, review_answers, review_pool
from ...course.search import MAX_QUERY_CHARS
from ..deps import AppContext, Ctx, learner_id, learner_states, same_origin
from ..responses import error_response, wants_json

router = APIRouter(tags=["retrieval"])

REVIEW_MIN_WORDS = 5
_ROUND = Annotated[int, Query(ge=0, le=MAX_ROUND, description=f"which set of questions, 0..{MAX_ROUND}")]


@router.get("/glossary", response_class=HTMLResponse, summary="The glossary: every symbol and term, where it is introduced")
async def glossary_page(ctx: Ctx) -> HTMLResponse:
    return HTMLResponse(ctx.renderer.glossary_page())


def _query_problem(q: str) -> str | None:
    if len(q) > MAX_QUERY_CHARS:
        return f"the search text has {len(q)} characters; the limit is {MAX_QUERY_CHARS}"
    bad = next((c for c in q if unicodedata.category(c) in ("Cc", "Cf", "Cs")), None)
    if bad is not None:
        return f"the search text holds the control character U+{ord(bad):04X}; use letters, digits and punctuation only"
    return None


@router.get(
    "/search",
    response_class=HTMLResponse,
    summary="Full-text search over the course's sections and elements",
    responses={422: {"description": f"q over {MAX_QUERY_CHARS} characters or holding a control character"}},
)
async def search_page(
    request: Request,
    ctx: Ctx,
    q: Annotated[str, Query(description=f"the words to find (at most {MAX_QUERY_CHARS} characters)")] = "",
) -> Response:
    problem = _query_problem(q)
    if problem:
        return error_response(request, ctx, 422, problem, field="q", accepted=f"text of at most {MAX_QUERY_CHARS} characters, no control characters")
    # a query over common words takes milliseconds: off the event loop
    hits = await run_in_threadpool(ctx.search.search, q) if ctx.search and q.strip() else []
    return HTMLResponse(ctx.renderer.page("search", q=q, hits=hits, searched=bool(q.strip())))


# --- review -------------------------------------------------------------------------------------

def _review_context(ctx: AppContext, learner: str, round_number: int) -> dict[str, Any]:
    states = ctx.store.states(learner)
    attempts = ctx.store.attempts(learner)
    pool = review_pool(ctx.course, states, attempts)
    items = draw(pool, learner, round_number)
    counts = {reason: sum(1 for i in pool if i.reason == reason) for reason in REASONS}
    orders = {i.element.id: ctx.course.option_order(i.element.id, learner) for i in items if i.element.type == "check"}
    return {
        "items": items, "answers": review_answers(attempts, round_number), "round": round_number, "counts": counts,
        "pool_size": len(pool), "reasons": REASONS, "orders": orders, "html": ctx.renderer.element_html,
        "chapters": {c.number: c for c in ctx.course.chapters},
    }


@router.get("/review", response_class=HTMLResponse, summary="Final review: questions weighted by what you got wrong or skipped")
async def review_page(request: Request, ctx: Ctx, round: _ROUND = 0) -> HTMLResponse:  # noqa: A002 - the query's name
    context = await run_in_threadpool(_review_context, ctx, learner_id(request), round)
    return HTMLResponse(ctx.renderer.page("review", **context))


_REVIEW_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {"schema": {"type": "object", "properties": {
                "round": {"type": "integer", "minimum": 0, "maximum": MAX_ROUND},
                "option": {"type": "string", "description": "a check: the option chosen, 1..4"},
                "answer": {"type": "string", "description": f"a checkpoint: your answer (at least {REVIEW_MIN_WORDS} words)"},
                "rating": {"type": "string", "enum": list(RATINGS), "description": "a checkpoint, after answering: your self-rating"},
            }}}
            for kind in ("application/x-www-form-urlencoded", "multipart/form-data")
        },
    }
}


@router.post(
    "/review/{element_id}",
    summary="Answer a review question; stored as a review attempt (the original answers stay as they were)",
    dependencies=[Depends(same_origin)],
    openapi_extra=_REVIEW_BODY,
    responses={
        200: {"description": "saved (Accept: application/json)", "content": {"application/json": {"schema": {"type": "object"}}}},
        303: {"description": "saved; back to the question on the review page"},
        404: {"description": "no check or checkpoint with this id"},
        409: {"description": "a rating before an answer in this round"},
    },
)
async def review_answer(element_id: str, request: Request, ctx: Ctx) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str) and v != ""}
    element = ctx.course.elements.get(element_id)
    if element is None or element.type not in ("check", "checkpoint"):
        raise HTTPException(404, f"There is no check or checkpoint {element_id!r} to review.")
    try:
        result = await run_in_threadpool(_record_review, ctx, learner_id(request), element, fields)
    except InputError as err:
        return error_response(request, ctx, err.status, err.message, field=err.field, accepted=err.accepted)
    if wants_json(request):
        return JSONResponse({"element": element.id, **result})
    return RedirectResponse(f"/review?round={result['round']}#review-{element.id}", status_code=303)


def _round(fields: dict[str, str]) -> int:
    raw = fields.get("round", "0")
    if not raw.isdigit() or int(raw) > MAX_ROUND:
        raise InputError("round", f"round must be an integer in 0..{MAX_ROUND}, got {raw[:20]!r}", accepted=f"0..{MAX_ROUND}")
    return int(raw)


def _record_review(ctx: AppContext, learner: str, element: Element, fields: dict[str, str]) -> dict[str, Any]:
    round_number = _round(fields)
    if element.type == "check":
        kind, payload = "review-check", _check_payload(element, fields)
    elif "rating" in fields:
        kind, payload = "review-rating", _rating_payload(ctx, learner, element, fields, round_number)
    else:
        kind, payload = "review-checkpoint", _checkpoint_payload(fields)
    ctx.store.record(learner, element.id, element.type, kind, {**payload, "round": round_number})
    return {"kind": kind, "round": round_number, **payload}


def _check_payload(element: Element, fields: dict[str, str]) -> dict[str, Any]:
    options = element.html["options"]
    accepted = ", ".join(str(i) for i in range(1, len(options) + 1))
    raw = fields.get("option")
    if raw is None or not raw.isdigit() or not 1 <= int(raw) <= len(options):
        shown = "missing" if raw is None else repr(raw[:20])
        raise InputError("option", f"option must be one of {accepted}; got {shown}", accepted=accepted)
    option = int(raw)
    return {"option": option, "correct": bool(options[option - 1]["correct"])}


def _checkpoint_payload(fields: dict[str, str]) -> dict[str, Any]:
    text = fields.get("answer", "").strip()
    words = word_count(text)
    if words < REVIEW_MIN_WORDS or len(text) > 20_000:
        accepted = f"{REVIEW_MIN_WORDS} words to 20000 characters"
        raise InputError("answer", f"your review answer has {words} words and {len(text)} characters; write {accepted}", accepted=accepted)
    return {"text": text, "words": words}


def _rating_payload(ctx: AppContext, learner: str, element: Element, fields: dict[str, str], round_number: int) -> dict[str, Any]:
    rating = fields["rating"]
    if rating not in RATINGS:
        raise InputError("rating", f"rating must be one of {', '.join(RATINGS)}; got {rating[:20]!r}", accepted=", ".join(RATINGS))
    answered = review_answers(ctx.store.attempts(learner, element.id), round_number).get(element.id, {})
    if not answered.get("text"):
        raise InputError("rating", "answer this review question before rating your answer", status=409)
    return {"rating": rating}


# --- completion ---------------------------------------------------------------------------------

@router.get("/complete", response_class=HTMLResponse, summary="What you covered, the time you spent, and where to go next")
async def complete_page(request: Request, ctx: Ctx) -> HTMLResponse:
    learner = learner_id(request)
    states = await learner_states(ctx, learner)
    attempts = await run_in_threadpool(ctx.store.attempts, learner)
    done = completion(ctx.course, states, attempts)
    return HTMLResponse(ctx.renderer.page(
        "complete", done=done, duration=format_duration(done.seconds), reading=READING_LIST, chapters=ctx.course.chapters
    ))
