"""Build-It routes: submit code to the sandboxed grader, and run a passing solution in the simulation.

    POST /elements/{id}/submission   form field `code` (or JSON {"code": ...}); 256 KiB body limit
    POST /elements/{id}/run          optional `steps` (euler_sample: Euler steps, 1..100)

Both answer like every element action: a plain form post with 303 back to the element (the page
then shows the result from the learner's progress), a fragment request
(`X-Straightline-Fragment: 1`) with the element's new HTML, and a JSON request with the grade or
the run. Grading happens on the grader's own thread and sandboxed processes; these handlers only
await it, so page requests keep being served meanwhile.

Every graded submission is stored (attempt kind `submission`, payload {code, result, counts});
an infrastructure failure is stored too, flagged as not counting. Refusals store nothing:
404 unknown element (or not a Build-It), 409 locked / previous submission still grading / no
passing solution to run yet, 413 code over the grader's limit (the body limit is 256 KiB),
422 missing `code` or `steps` out of range, 429 (with Retry-After) when the requester's address
already has its share of jobs in the grader or the queue is full, 503 grading unavailable
(bubblewrap missing).

The per-address limits (grader.py) are what a flood cannot dodge: a request without a cookie is
a new learner, so "one job per learner" alone binds nobody. With `--unsafe-local-grading` (no
sandbox) a submission or run must also carry the page's grade token (field `grade_token`, or the
header `X-Straightline-Grade-Token`), bound to the learner's cookie and the host name: 403 without.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...course.content import Element
from ...course.progress import InputError, apply, chapter_progress, describe, locks
from ...grader.catalog import EULER_STEPS, SIMULATIONS, UnknownExercise, check_exercise
from ...grader.grader import (
    ClientBusy, GraderUnavailable, LearnerBusy, QueueFull, SubmissionRefused, SubmissionTooLarge,
)
from ..hosts import grade_token
from ..responses import STATUS_TITLES, wants_fragment, wants_json
from ..deps import AppContext, Ctx, chapter_of, learner_id, learner_states, same_origin

router = APIRouter(tags=["build-it"], dependencies=[Depends(same_origin)])

RETRY_AFTER_S = 5
_REFUSAL_STATUS = {LearnerBusy: 409, ClientBusy: 429, QueueFull: 429, GraderUnavailable: 503, SubmissionTooLarge: 413}

_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "graded: the grade (JSON) or the element's new HTML (fragment)"},
    303: {"description": "graded and saved; redirect back to the element (plain form posts)"},
    404: {"description": "no such element, or it is not a Build-It exercise"},
    409: {"description": "locked element, or your previous submission is still being graded"},
    403: {"description": "from another site, or (unsafe local grading only) without the page's grade token"},
    413: {"description": "code over the grader's limit (or a body over 256 KiB)"},
    422: {"description": "the field `code` is missing"},
    429: {"description": "your address has its share of jobs in the grader, or the queue is full (Retry-After)"},
    503: {"description": "grading is unavailable here (bubblewrap missing)"},
}
_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in _SUBMIT_RESPONSES.items() if k not in (200, 303, 409, 422)},
    200: {"description": "the run: particles, paths and W2 numbers (JSON) or the element's new HTML (fragment)"},
    303: {"description": "ran and saved the summary; redirect back to the element (plain form posts)"},
    409: {"description": "locked, no passing solution yet, or a submission of yours is still running"},
    422: {"description": "`steps` is not an integer in 1..100"},
}


def _build_it(ctx: AppContext, element_id: str, action: str) -> tuple[Element, str]:
    element = ctx.course.elements.get(element_id)
    if element is None:
        raise HTTPException(404, f"There is no element {element_id!r} in this course.")
    if element.type != "build-it":
        raise HTTPException(404, f"Element {element_id!r} is a {element.type}; it has no {action!r} action.")
    name = element.fields.get("exercise")
    try:
        check_exercise(name)
    except UnknownExercise:
        raise HTTPException(404, f"Element {element_id!r} asks for the exercise {name!r}, which this version does not have.") from None
    return element, name


async def _fields(request: Request) -> dict[str, Any]:
    """The request's fields: a JSON object, or a (urlencoded or multipart) form."""
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            data = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise InputError("body", "the JSON body does not parse", accepted='{"code": "..."}') from None
        if not isinstance(data, dict):
            raise InputError("body", "the JSON body must be an object", accepted='{"code": "..."}')
        return data
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"status": status, "title": STATUS_TITLES.get(status, "Error"), "message": message, **extra}}


async def _refuse(
    request: Request, ctx: AppContext, element: Element, status: int, message: str, *,
    field: str = "code", draft: dict[str, str] | None = None, action: str = "submission",
    reason: str | None = None, headers: dict[str, str] | None = None,
) -> Response:
    """A refusal, in the form the client asked for. Plain forms get the chapter page back with the
    message at the element and the learner's code still in the editor."""
    if wants_json(request):
        extra = {"field": field} | ({"reason": reason} if reason else {})
        return JSONResponse(_error_body(status, message, **extra), status_code=status, headers=headers)
    if wants_fragment(request):
        from markupsafe import escape

        html = f'<p class="field-error request-error" role="alert">{escape(message)}</p>'
        return HTMLResponse(html, status_code=status, headers={**(headers or {}), "X-Straightline-Error": "1"})
    err = InputError(field, message, status=status)
    states = await learner_states(ctx, learner_id(request))
    page = ctx.renderer.chapter_page(
        chapter_of(ctx, element), states, error_element=element, error=err, draft=draft or {}, action=action
    )
    return HTMLResponse(page, status_code=status, headers=headers)


async def _locked(request: Request, ctx: AppContext, element: Element) -> Element | None:
    states = await learner_states(ctx, learner_id(request))
    return locks(chapter_of(ctx, element), states).get(element.id)


def _refusal(exc: SubmissionRefused) -> tuple[int, dict[str, str] | None]:
    status = next((code for cls, code in _REFUSAL_STATUS.items() if isinstance(exc, cls)), 503)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(exc, (QueueFull, ClientBusy)) else None
    return status, headers


def _client(request: Request) -> str | None:
    """The requester's address (behind a trusted proxy, the one it forwarded: web/hosts.py)."""
    return request.client.host if request.client is not None else None


def _token_problem(request: Request, ctx: AppContext, fields: dict[str, Any]) -> str | None:
    """Without a sandbox, code runs only for a page this server rendered for this learner and host."""
    if not ctx.settings.unsafe_local_grading:
        return None
    sent = fields.get("grade_token") or request.headers.get("x-straightline-grade-token") or ""
    expected = grade_token(ctx.settings.secret_key, learner_id(request), request.state.host)
    if isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode()):
        return None
    return (
        "This server grades without a sandbox, so it runs code only from its own page: reload the page "
        "and submit again (the form's grade_token is missing or belongs to another page)."
    )


async def _answer(request: Request, ctx: AppContext, element: Element, new: Any, body: dict[str, Any]) -> Response:
    chapter = chapter_of(ctx, element)
    states = {**(await learner_states(ctx, learner_id(request))), element.id: new}
    progress = chapter_progress(chapter, states)
    if wants_json(request):
        return JSONResponse(
            {
                "element": element.id,
                "type": element.type,
                "status": new.status,
                "description": describe(element, new),
                "attempts": new.state.get("attempts", 0),
                "passed": bool(new.state.get("passed")),
                **body,
                "chapter": {"slug": chapter.slug, "done": progress.done, "total": progress.total},
            }
        )
    if wants_fragment(request):
        return HTMLResponse(
            ctx.renderer.element(element, new), headers={"X-Chapter-Progress": f"{progress.done}/{progress.total}"}
        )
    return RedirectResponse(f"/chapters/{chapter.slug}#{element.id}", status_code=303)


@router.post(
    "/elements/{element_id}/submission",
    responses=_SUBMIT_RESPONSES,
    summary="Submit code for a Build-It exercise: graded in the sandbox, stored in your progress",
)
async def submit(element_id: str, request: Request, ctx: Ctx) -> Response:
    element, exercise = _build_it(ctx, element_id, "submission")
    try:
        fields = await _fields(request)
    except InputError as err:
        return await _refuse(request, ctx, element, 422, err.message, field=err.field)
    code = fields.get("code")
    if not isinstance(code, str):
        return await _refuse(request, ctx, element, 422, "The field 'code' is missing: send your code in it.")
    draft = {"code": code}
    problem = _token_problem(request, ctx, fields)
    if problem is not None:
        return await _refuse(request, ctx, element, 403, problem, draft=draft, reason="grade_token")
    gate = await _locked(request, ctx, element)
    if gate is not None:
        return await _refuse(
            request, ctx, element, 409,
            f"This exercise is locked until you clear the checkpoint above it ({gate.id}).", draft=draft,
        )
    learner = learner_id(request)
    try:
        result = await ctx.grader.submit(learner, exercise, code, client=_client(request))
    except SubmissionRefused as exc:
        status, headers = _refusal(exc)
        return await _refuse(request, ctx, element, status, exc.message, draft=draft, reason=exc.reason, headers=headers)
    data = result.to_dict()
    try:
        new = await run_in_threadpool(
            ctx.store.update, learner, element.id, element.type,
            lambda old: apply(element, "submission", {"code": code, "result": data}, old),
        )
    except InputError as err:
        return await _refuse(request, ctx, element, err.status, err.message, draft=draft)
    return await _answer(request, ctx, element, new, {"result": data})


def _steps(raw: Any, exercise: str) -> int | None:
    if raw is None or raw == "":
        return None
    low, high = EULER_STEPS
    if SIMULATIONS.get(exercise) != "euler":
        raise InputError("steps", f"this simulation has no steps to choose (only euler_sample's has: {low}..{high})")
    try:
        steps = int(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        steps = None
    if steps is None or str(raw).strip() not in (str(steps), f"{steps}.0") or not low <= steps <= high:
        raise InputError("steps", f"steps must be an integer in {low}..{high}, got {str(raw)[:20]!r}", accepted=f"{low}..{high}")
    return steps


@router.post(
    "/elements/{element_id}/run",
    responses=_RUN_RESPONSES,
    summary="Run your passing solution in the simulation (two clusters): particles, paths and W2 to the data",
)
async def run(element_id: str, request: Request, ctx: Ctx) -> Response:
    element, exercise = _build_it(ctx, element_id, "run")
    try:
        fields = await _fields(request)
        steps = _steps(fields.get("steps"), exercise)
    except InputError as err:
        return await _refuse(request, ctx, element, 422, err.message[:1].upper() + err.message[1:] + ".", field=err.field, action="run")
    problem = _token_problem(request, ctx, fields)
    if problem is not None:
        return await _refuse(request, ctx, element, 403, problem, field="run", action="run", reason="grade_token")
    gate = await _locked(request, ctx, element)
    if gate is not None:
        return await _refuse(
            request, ctx, element, 409, f"This exercise is locked until you clear the checkpoint above it ({gate.id}).",
            field="run", action="run",
        )
    learner = learner_id(request)
    states = await learner_states(ctx, learner)
    state = states.get(element.id)
    code = state.state.get("passed_code") if state is not None else None
    if not (state is not None and state.state.get("passed") and isinstance(code, str)):
        return await _refuse(
            request, ctx, element, 409, "Pass the tests first: the simulation runs your passing solution.",
            field="run", action="run",
        )
    try:
        result = await ctx.grader.run(learner, exercise, code, steps=steps, client=_client(request))
    except SubmissionRefused as exc:
        status, headers = _refusal(exc)
        return await _refuse(request, ctx, element, status, exc.message, field="run", action="run", reason=exc.reason, headers=headers)
    summary = result.summary()
    try:
        new = await run_in_threadpool(
            ctx.store.update, learner, element.id, element.type, lambda old: apply(element, "run", {"run": summary}, old)
        )
    except InputError as err:
        return await _refuse(request, ctx, element, err.status, err.message, field="run", action="run")
    return await _answer(request, ctx, element, new, {"run": result.to_dict()})
