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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...course.content import Element
from ...course.progress import InputError, apply, locks
from ...grader.catalog import EULER_STEPS, SIMULATIONS, UnknownExercise, check_exercise
from ...grader.grader import (
    ClientBusy, GraderUnavailable, LearnerBusy, QueueFull, SubmissionRefused, SubmissionTooLarge,
)
from ..deps import AppContext, Ctx, chapter_of, learner_id, learner_states, same_origin
from ..hosts import grade_token
from ..responses import STATUS_TITLES, wants_fragment, wants_json
from .answer import element_answer

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
        chapter_of(ctx, element), states, error_element=element, error=err, draft=draft or {}, action=action,
        learner=learner_id(request),
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
    states = {**(await learner_states(ctx, learner_id(request))), element.id: new}
    extra = {"attempts": new.state.get("attempts", 0), "passed": bool(new.state.get("passed")), **body}
    return element_answer(request, ctx, element, new, states, extra)


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


def _code(fields: dict[str, Any], exercise: str) -> str:
    code = fields.get("code")
    if not isinstance(code, str):
        raise InputError("code", "The field 'code' is missing: send your code in it.")
    return code


def _run_steps(fields: dict[str, Any], exercise: str) -> int | None:
    return _steps(fields.get("steps"), exercise)


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


@dataclass
class Attempt:
    """A Build-It request that passed the prologue, or the answer refusing it (`refusal`)."""

    element: Element
    exercise: str
    learner: str
    value: Any = None  # the code (submission) or the number of steps (run)
    refusal: Response | None = None


def _prologue(action: str, field: str, read: Callable[[dict[str, Any], str], Any], *, sentence: bool = False):
    """The dependency both Build-It actions start with: the element and its exercise (404), the
    fields and what `read` takes from them (422), the grade token (403) and the lock (409).
    Refusals name `field` and come back with the chapter page for `action` (plain forms);
    `sentence`: a 422's message is made a sentence."""

    async def prologue(element_id: str, request: Request, ctx: Ctx) -> Attempt:
        element, exercise = _build_it(ctx, element_id, action)
        attempt = Attempt(element, exercise, learner_id(request))
        refuse = partial(_refuse, request, ctx, element, field=field, action=action)
        try:
            fields = await _fields(request)
            attempt.value = read(fields, exercise)
        except InputError as err:
            attempt.refusal = await refuse(422, _sentence(err.message) if sentence else err.message, field=err.field)
            return attempt
        draft = {"code": attempt.value} if action == "submission" else None
        problem = _token_problem(request, ctx, fields)
        gate = await _locked(request, ctx, element) if problem is None else None
        if problem is not None:
            attempt.refusal = await refuse(403, problem, draft=draft, reason="grade_token")
        elif gate is not None:
            message = f"This exercise is locked until you clear the checkpoint above it ({gate.id})."
            attempt.refusal = await refuse(409, message, draft=draft)
        return attempt

    return prologue


async def _save(ctx: AppContext, attempt: Attempt, action: str, form: dict[str, Any]) -> Any:
    """Store the action's outcome in the learner's progress (InputError if it does not apply)."""
    element = attempt.element
    return await run_in_threadpool(
        ctx.store.update, attempt.learner, element.id, element.type, lambda old: apply(element, action, form, old)
    )


@router.post(
    "/elements/{element_id}/submission",
    responses=_SUBMIT_RESPONSES,
    summary="Submit code for a Build-It exercise: graded in the sandbox, stored in your progress",
)
async def submit(
    request: Request, ctx: Ctx, attempt: Annotated[Attempt, Depends(_prologue("submission", "code", _code))]
) -> Response:
    if attempt.refusal is not None:
        return attempt.refusal
    element, code = attempt.element, attempt.value
    refuse = partial(_refuse, request, ctx, element, draft={"code": code})
    try:
        result = await ctx.grader.submit(attempt.learner, attempt.exercise, code, client=_client(request))
    except SubmissionRefused as exc:
        status, headers = _refusal(exc)
        return await refuse(status, exc.message, reason=exc.reason, headers=headers)
    data = result.to_dict()
    try:
        new = await _save(ctx, attempt, "submission", {"code": code, "result": data})
    except InputError as err:
        return await refuse(err.status, err.message)
    return await _answer(request, ctx, element, new, {"result": data})


@router.post(
    "/elements/{element_id}/run",
    responses=_RUN_RESPONSES,
    summary="Run your passing solution in the simulation (two clusters): particles, paths and W2 to the data",
)
async def run(
    request: Request, ctx: Ctx, attempt: Annotated[Attempt, Depends(_prologue("run", "run", _run_steps, sentence=True))]
) -> Response:
    if attempt.refusal is not None:
        return attempt.refusal
    element = attempt.element
    refuse = partial(_refuse, request, ctx, element, field="run", action="run")
    state = (await learner_states(ctx, attempt.learner)).get(element.id)
    code = state.state.get("passed_code") if state is not None else None
    if not (state is not None and state.state.get("passed") and isinstance(code, str)):
        return await refuse(409, "Pass the tests first: the simulation runs your passing solution.")
    try:
        result = await ctx.grader.run(attempt.learner, attempt.exercise, code, steps=attempt.value, client=_client(request))
    except SubmissionRefused as exc:
        status, headers = _refusal(exc)
        return await refuse(status, exc.message, reason=exc.reason, headers=headers)
    try:
        new = await _save(ctx, attempt, "run", {"run": result.summary()})
    except InputError as err:
        return await refuse(err.status, err.message)
    return await _answer(request, ctx, element, new, {"run": result.to_dict()})
