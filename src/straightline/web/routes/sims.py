"""The simulations API: `GET /api/sims/{name}` for each simulation, and live training.

Every simulation's query parameters are its parameter model's fields (`course/simparams.py`),
listed with their ranges in the OpenAPI schema. A parameter out of range, of the wrong type, given
twice or unknown is answered 422 with a JSON error naming it and what it accepts, and so is a
request whose estimated cost (`course/simcost.py`) is over the cap. Results are deterministic given
the parameters, so they carry an ETag and may be cached by the browser. A computation beyond the
per-client or the server-wide limit (`web/sim_runtime.py`) is answered 429 or 503 with Retry-After,
and a request a page on another site makes (`Sec-Fetch-Site: cross-site`, as an `<img>` tag sends)
403, before anything is computed.

Live training: `POST /api/sims/live-training` starts a job for the learner in the cookie (one per
learner; 429 at the global cap) and answers its id; `GET .../{job}/events` streams Server-Sent
Events (snapshot ... then done, cancelled or error) to that learner only; the job is cancelled when
the stream goes away, or by `DELETE .../{job}`.
"""

from __future__ import annotations

import json
import typing
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse, Response, StreamingResponse

from ...course.simcost import MAX_COST_S, estimate, over_limit
from ...course.simparams import PARAMS, SIM_SUMMARIES, LiveParams, SimParams, describe_accepted
from ...course.texthygiene import JsonProblem, loads_strict
from ..responses import error_response
from ..deps import AppContext, Ctx, learner_id, same_origin
from ..live_feed import TERMINAL, job_events
from ..sim_runtime import Busy, NotReady, SimResult

__all__ = ["router", "InputProblem", "parse_query", "parse_live_body"]

router = APIRouter(prefix="/api/sims", tags=["simulations"])

CACHE_CONTROL = "public, max-age=86400"  # deterministic by seed; the ETag guards a new version
EVENTS_HEARTBEAT_S = 5.0


class InputProblem(ValueError):
    """A parameter the API does not accept: which one, why, and what it accepts."""

    def __init__(self, field: str, message: str, accepted: str):
        super().__init__(message)
        self.field, self.message, self.accepted = field, message, accepted


def _is_sequence(model: type[BaseModel], name: str) -> bool:
    return typing.get_origin(model.model_fields[name].annotation) in (tuple, list)


def _nullable(model: type[BaseModel], name: str) -> bool:
    return type(None) in typing.get_args(model.model_fields[name].annotation)


def _problem(model: type[BaseModel], err: ValidationError, data: dict[str, Any], what: str) -> InputProblem:
    first = err.errors()[0]
    loc = first.get("loc", ())
    name = str(loc[0]) if loc else "request"
    if first.get("type") == "extra_forbidden":
        accepted = ", ".join(model.model_fields)
        return InputProblem(name, f"unknown {what} {name!r}; the accepted {what}s are {accepted}", accepted)
    accepted = describe_accepted(model, name)
    if first.get("type") == "value_error":  # a validator's own sentence
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        return InputProblem(name, f"{what} {name!r}: {message}", accepted)
    got = data.get(name, first.get("input"))
    if isinstance(got, list) and len(got) > 5:
        shown = f"a list of {len(got)}"
    else:
        shown = repr(got)
    return InputProblem(name, f"{what} {name!r} must be {accepted}; got {shown}", accepted)


def parse_query(model: type[SimParams], query: QueryParams) -> SimParams:
    """The parameter model from query parameters (repeated or comma-separated for lists)."""
    data: dict[str, Any] = {}
    for key in dict.fromkeys(query.keys()):
        values = query.getlist(key)
        if key not in model.model_fields:
            accepted = ", ".join(model.model_fields)
            raise InputProblem(key, f"unknown parameter {key!r}; the accepted parameters are {accepted}", accepted)
        if _is_sequence(model, key):
            data[key] = [part for value in values for part in value.split(",") if part]
        elif len(values) > 1:
            raise InputProblem(key, f"parameter {key!r} is given {len(values)} times; give it once", describe_accepted(model, key))
        elif values[0] == "" and _nullable(model, key):
            data[key] = None
        else:
            data[key] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _problem(model, err, data, "parameter") from None


def parse_live_body(raw: bytes) -> LiveParams:
    """The live-training parameters from a JSON body (an empty body takes every default)."""
    try:
        data = loads_strict(raw if raw.strip() else b"{}")
    except JsonProblem as exc:
        field = exc.where or "body"
        raise InputProblem(field, f"the body {exc.message}" if not exc.where else f"field {field!r} {exc.message}", "a JSON object") from None
    if not isinstance(data, dict):
        raise InputProblem("body", "the body must be a JSON object of live-training parameters", "a JSON object")
    try:
        return LiveParams.model_validate(data)
    except ValidationError as err:
        raise _problem(LiveParams, err, data, "field") from None


def _refuse(request: Request, problem: InputProblem) -> Response:
    return error_response(request, None, 422, problem.message, field=problem.field, accepted=problem.accepted)


def _send(request: Request, result: SimResult) -> Response:
    headers = {
        "cache-control": CACHE_CONTROL,
        "etag": result.etag,
        "vary": "accept-encoding",
        "server-timing": f"compute;dur={result.compute_ms:.1f}",
    }
    if result.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(result.gzipped, media_type="application/json", headers=headers)
    return Response(result.body, media_type="application/json", headers=headers)


def _unavailable(request: Request, exc: NotReady) -> Response:
    return error_response(request, None, 503, f"Simulations are unavailable: {exc}.", headers={"retry-after": "5"})


def _busy(request: Request, exc: Busy) -> Response:
    return error_response(request, None, exc.status, f"Simulations are busy: {exc}.", headers={"retry-after": str(exc.retry_after_s)})


def _cross_site(request: Request) -> Response | None:
    """403 for a request a page on another site made (an <img> or <script> tag pointing here)."""
    if request.headers.get("sec-fetch-site") != "cross-site":
        return None
    return error_response(request, None, 403, "Simulations answer only this site's own pages (Sec-Fetch-Site: cross-site).")


def _client(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


# --- one GET route per simulation ------------------------------------------------------------------

def _openapi_parameters(model: type[SimParams]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        description = prop.pop("description", name)
        entry: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"{description}; accepts {describe_accepted(model, name)}",
            "schema": prop,
        }
        if prop.get("type") == "array":
            entry.update(style="form", explode=False)
        out.append(entry)
    return out


_SIM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the simulation's result: numbers, and arrays as "
        '`{"shape": [...], "scale": s, "data": base64 little-endian int16}` (value = int / s)',
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    304: {"description": "not modified (If-None-Match)"},
    403: {"description": "requested by a page on another site (Sec-Fetch-Site: cross-site)"},
    422: {
        "description": "a parameter is unknown, given twice, of the wrong type or out of range, holds text that is "
        f"not UTF-8 or has NUL, or the request would cost more than {MAX_COST_S:.0f} s; the message names the parameters"
    },
    429: {"description": "this client already has its limit of simulations computing (Retry-After)"},
    503: {"description": "the simulation models could not be loaded, or the server's queue is full (Retry-After)"},
}


def _sim_route(name: str, model: type[SimParams]):
    async def run_simulation(request: Request, ctx: Ctx) -> Response:
        refused = _cross_site(request)
        if refused is not None:
            return refused
        try:
            params = parse_query(model, request.query_params)
            cap = ctx.sims.max_cost_s
            too_dear = over_limit(name, params, cap)
            if too_dear:
                raise InputProblem(", ".join(estimate(name, params).drivers), too_dear, f"at most {cap:.1f} s per request")
        except InputProblem as problem:
            return _refuse(request, problem)
        try:
            result = await ctx.sims.result(name, params, client=_client(request))
        except NotReady as exc:
            return _unavailable(request, exc)
        except Busy as exc:
            return _busy(request, exc)
        return _send(request, result)

    run_simulation.__name__ = "sim_" + name.replace("-", "_")
    return run_simulation


for _name, _model in PARAMS.items():
    router.add_api_route(
        f"/{_name}",
        _sim_route(_name, _model),
        methods=["GET"],
        summary=SIM_SUMMARIES[_name],
        description=f"Simulation `{_name}`. Deterministic given its parameters (the seed is one of them); "
        "omitted parameters take their defaults.",
        responses=_SIM_RESPONSES,
        openapi_extra={"parameters": _openapi_parameters(_model)},
        response_class=Response,
    )


# --- live training -----------------------------------------------------------------------------------

def _job_json(job) -> dict[str, Any]:
    return {
        "job": job.id,
        "state": job.state,
        "steps_done": job.steps_done,
        "steps": job.params.steps,
        "events": f"/api/sims/live-training/{job.id}/events",
    }


_LIVE_BODY = {
    "requestBody": {
        "required": False,  # an empty body trains with every default
        "content": {"application/json": {"schema": LiveParams.model_json_schema()}},
    }
}


@router.post(
    "/live-training",
    summary="Start training a 2-D model for this learner (cancels the learner's previous job)",
    description="The body is the live-training parameters (optional: an empty body takes every default). "
    "Answers the job (201); read its snapshots from `events`. At most one job per learner and a global cap on "
    "concurrent jobs.",
    status_code=201,
    responses={
        201: {"description": "started: the job's id, state and events URL"},
        403: {"description": "sent by a page on another site"},
        413: {"description": "body over 64 KiB"},
        422: {"description": "a field is unknown, out of range or not accepted text, or the body is not a JSON object "
              "(or nested too deeply); the message names it"},
        429: {"description": "the global cap on concurrent jobs is reached; retry after the Retry-After seconds"},
        503: {"description": "the simulation models could not be loaded"},
    },
    openapi_extra=_LIVE_BODY,
    dependencies=[Depends(same_origin)],
    response_class=JSONResponse,
)
async def start_live_training(request: Request, ctx: Ctx) -> Response:
    try:
        params = parse_live_body(await request.body())
    except InputProblem as problem:
        return _refuse(request, problem)
    rt = ctx.sims
    try:
        await rt.wait_ready()
    except NotReady as exc:
        return _unavailable(request, exc)
    from ...course.live import Busy

    try:  # in a worker thread: the first job may wait for the training process to start
        job = await run_in_threadpool(rt.live.start, learner_id(request), params)
    except Busy as exc:
        return error_response(request, None, 429, f"Live training is busy: {exc}.", headers={"retry-after": "10"})
    return JSONResponse(_job_json(job), status_code=201)


def _job_or_404(request: Request, ctx: AppContext, job_id: str):
    rt = ctx.sims
    job = rt.live.get(job_id, learner_id(request)) if rt.live is not None else None
    if job is None:
        return None, error_response(request, None, 404, f"There is no live-training job {job_id!r} of yours.")
    return job, None


_JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such job for this learner"},
    422: {"description": "a query parameter holds text that is not UTF-8 or has NUL"},
}


@router.get("/live-training/{job_id}", summary="A live-training job's state", responses=_JOB_RESPONSES)
async def live_training_state(job_id: str, request: Request, ctx: Ctx) -> Response:
    job, missing = _job_or_404(request, ctx, job_id)
    return missing or JSONResponse(_job_json(job))


@router.delete(
    "/live-training/{job_id}",
    summary="Cancel a live-training job",
    responses=_JOB_RESPONSES,
    dependencies=[Depends(same_origin)],
)
async def cancel_live_training(job_id: str, request: Request, ctx: Ctx) -> Response:
    job, missing = _job_or_404(request, ctx, job_id)
    if missing:
        return missing
    job.cancel()
    return JSONResponse(_job_json(job))


_CONTROLS = ("pause", "step", "resume")


def _control_command(raw: bytes) -> str:
    """The command of a step-mode request body {"command": "pause" | "step" | "resume"}."""
    accepted = ", ".join(_CONTROLS)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    command = body.get("command") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"command"} or command not in _CONTROLS:
        shown = repr(command)[:40] if isinstance(body, dict) and "command" in body else "no command"
        raise InputProblem("command", f"the body must be {{\"command\": ...}} with one of {accepted}; got {shown}", accepted)
    return command


@router.post(
    "/live-training/{job_id}/control",
    summary="Step mode: pause a live-training job, train one shown minibatch, or resume",
    description='The body is `{"command": "pause" | "step" | "resume"}`. A paused job waits between two steps; '
    'each "step" trains one minibatch in the open and sends a `batch` event (pairs, times, x_t, targets u_t, the '
    "model's v, each pair's loss, the batch loss before and after); `paused` and `resumed` events confirm the others. "
    "A job paused for 15 minutes is cancelled.",
    status_code=202,
    responses={**_JOB_RESPONSES, 202: {"description": "passed to the job; its events follow on the stream"},
               403: {"description": "sent by a page on another site"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"command": {"type": "string", "enum": list(_CONTROLS)}}, "required": ["command"]}}}}},
    dependencies=[Depends(same_origin)],
)
async def control_live_training(job_id: str, request: Request, ctx: Ctx) -> Response:
    job, missing = _job_or_404(request, ctx, job_id)
    if missing:
        return missing
    try:
        command = _control_command(await request.body())
    except InputProblem as problem:
        return _refuse(request, problem)
    if not job.done.is_set():
        job.control(command)
    return JSONResponse(_job_json(job), status_code=202)


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


@router.get(
    "/live-training/{job_id}/events",
    summary="Server-Sent Events of a live-training job: snapshot ..., then done, cancelled or error",
    description="Each event's data is JSON: `type`, `step`, `steps`, `loss` (mean since the last snapshot), "
    "`losses` (each step's), `field` and `grid` (the velocity at t = 0.5), `samples` (20 Euler steps from "
    "fixed noise) and, in the first snapshot, `data`. Closing the stream cancels the job. A job that has "
    "ended and has nothing left to send answers 204, which stops an EventSource from reconnecting.",
    responses={
        200: {"description": "the event stream", "content": {"text/event-stream": {}}},
        204: {"description": "the job has ended and every event was sent"},
        **_JOB_RESPONSES,
    },
    response_class=StreamingResponse,
)
async def live_training_events(job_id: str, request: Request, ctx: Ctx) -> Response:
    job, missing = _job_or_404(request, ctx, job_id)
    if missing:
        return missing
    if job.done.is_set() and job.events.empty():
        return Response(status_code=204)
    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(_stream(job), media_type="text/event-stream", headers=headers)


async def _stream(job) -> AsyncIterator[str]:
    """The job's events as SSE, each sent as soon as the training thread publishes it (web/live_feed.py);
    a comment line when none came for `EVENTS_HEARTBEAT_S`. Ends after the last event."""
    ended = False
    try:
        yield "retry: 3000\n\n"
        async for event in job_events(job, heartbeat_s=EVENTS_HEARTBEAT_S):
            if event is None:
                yield ": still training\n\n"
                continue
            ended = event["type"] in TERMINAL
            yield _sse(event)
    finally:
        # the stream went away (closed tab, dropped connection, server stopping) before the end
        if not ended:
            job.cancel()
