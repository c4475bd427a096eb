"""The grader <-> worker protocol, parsed strictly on the trusted side.

Everything the sandbox sends is untrusted data: one JSON object per line on the result pipe. This
module turns those lines into typed records and rejects anything that does not fit the schema
(unknown record types, a wrong per-run nonce, wrong value counts, oversized strings, nesting...)
with `ProtocolError`. Nothing is ever unpickled or evaluated. Numbers become float64 tensors that
the exercise checks compare with the reference computed here, outside the sandbox.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads on first use: the web app imports this module before it needs torch
    from torch import Tensor

__all__ = [
    "CallRecord",
    "ErrorInfo",
    "ModelCall",
    "Output",
    "ProtocolError",
    "Received",
    "RunRecord",
    "encode_job",
    "parse_call_records",
    "parse_run_record",
    "parse_line",
    "RECORD_TYPES",
    "MAX_LINE_BYTES",
]

MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_TEXT = 2000
MAX_DIMS = 16
MAX_VALUES = 50_000
RECORD_TYPES = ("ready", "accepted", "syntax_error", "load_error", "missing_function", "start", "case", "run", "done")


class ProtocolError(ValueError):
    """A line from the sandbox that is not what the worker writes: tampering, or a worker fault."""


def encode_job(
    nonce: str,
    function: str,
    code: str,
    cpu_seconds: int,
    cases: list[dict[str, Any]],
    run: dict[str, Any] | None = None,
) -> bytes:
    """The job line sent to a worker's stdin.

    A grading job has test `cases`; a simulation job ("run it in the simulation") has no cases
    and a `run` spec instead (see `simkit.py`), and its worker answers with one `run` record.
    """
    job: dict[str, Any] = {"nonce": nonce, "function": function, "code": code, "cpu_seconds": cpu_seconds, "cases": cases}
    if run is not None:
        job["run"] = run
    return (json.dumps(job) + "\n").encode()


def _constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def parse_line(line: bytes, nonce: str | None) -> dict[str, Any]:
    """One record; `nonce` None means the worker has not received its job yet (only 'ready')."""
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"a line of {len(line)} bytes")
    try:
        obj = json.loads(line.decode("utf-8"), parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"a line that is not JSON ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or obj.get("type") not in RECORD_TYPES:
        raise ProtocolError("a record of unknown type")
    if nonce is None:
        if obj != {"type": "ready"}:
            raise ProtocolError("a record before the job was handed over")
    elif obj.get("nonce") != nonce:
        raise ProtocolError("a record without this run's nonce")
    return obj


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised in the sandbox: its type name, message and submission line."""

    type: str
    message: str
    line: int | None


@dataclass(frozen=True)
class Received:
    """What the probe model (or noise_fn) received as one argument."""

    type: str  # "tensor", "number", or the Python type name
    shape: tuple[int, ...] | None
    values: Tensor | None  # float64, flat; None when too large or not numeric


@dataclass(frozen=True)
class ModelCall:
    x: Received
    t: Received


@dataclass(frozen=True)
class Output:
    """What the learner's function returned."""

    kind: str  # "tensor", "number", "other", "unreadable"
    shape: tuple[int, ...] | None = None
    dtype: str = ""
    values: Tensor | None = None
    requires_grad: bool = False
    type_name: str = ""
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class CallRecord:
    """One call of the learner's function inside a test case."""

    error: ErrorInfo | None
    output: Output | None
    model_calls: tuple[ModelCall, ...]
    noise_calls: tuple[tuple[int, ...] | None, ...]
    seconds: float


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ProtocolError(f"{what}: not a short string")
    return value


def _int(value: Any, what: str, low: int = 0, high: int = 2**31) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"{what}: not an integer in {low}..{high}")
    return value


def _shape(value: Any, what: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_DIMS:
        raise ProtocolError(f"{what}: not a shape")
    return tuple(_int(n, what, 0, 2**31) for n in value)


def _values(value: Any, shape: tuple[int, ...] | None, what: str) -> Tensor | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_VALUES:
        raise ProtocolError(f"{what}: not a list of at most {MAX_VALUES} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ProtocolError(f"{what}: not numbers")
    if shape is not None and len(value) != math.prod(shape):
        raise ProtocolError(f"{what}: {len(value)} values for shape {list(shape)}")
    import torch

    return torch.tensor(value, dtype=torch.float64)


def _error(value: Any, what: str) -> ErrorInfo | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"type", "message", "line"}:
        raise ProtocolError(f"{what}: not an error record")
    line = None if value["line"] is None else _int(value["line"], f"{what} line", 0, 10**7)
    return ErrorInfo(type=_text(value["type"], what), message=_text(value["message"], what), line=line)


def _received(value: Any, what: str) -> Received:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ProtocolError(f"{what}: not a description of an argument")
    shape = _shape(value.get("shape"), what)
    values = _values(value.get("values"), shape, what)
    return Received(type=_text(value["type"], what), shape=shape, values=values)


def _output(value: Any) -> Output:
    if not isinstance(value, dict):
        raise ProtocolError("output: not a record")
    kind = value.get("kind")
    if kind == "tensor":
        shape = _shape(value.get("shape"), "output shape")
        if shape is None:
            raise ProtocolError("output: a tensor without a shape")
        rg = value.get("requires_grad")
        if not isinstance(rg, bool):
            raise ProtocolError("output: requires_grad is not a boolean")
        return Output(
            kind="tensor",
            shape=shape,
            dtype=_text(value.get("dtype", ""), "output dtype"),
            values=_values(value.get("values"), shape, "output values"),
            requires_grad=rg,
        )
    if kind == "number":
        return Output(kind="number", shape=(), values=_values(value.get("values"), (1,), "output value"))
    if kind == "other":
        return Output(kind="other", type_name=_text(value.get("type", ""), "output type"))
    if kind == "unreadable":
        return Output(kind="unreadable", error=_error(value.get("error"), "output error"))
    raise ProtocolError("output: unknown kind")


def parse_call_records(record: dict[str, Any], n_calls: int) -> tuple[CallRecord, ...]:
    """The calls of a 'case' record; exactly `n_calls` of them."""
    calls = record.get("calls")
    if not isinstance(calls, list) or len(calls) != n_calls:
        raise ProtocolError(f"a case record without its {n_calls} call(s)")
    out = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            raise ProtocolError(f"call {i}: not a record")
        error = _error(call.get("error"), f"call {i} error")
        output = None if "output" not in call else _output(call["output"])
        if (error is None) == (output is None):
            raise ProtocolError(f"call {i}: needs exactly one of error and output")
        model_calls = call.get("model_calls", [])
        noise_calls = call.get("noise_calls", [])
        if not isinstance(model_calls, list) or not isinstance(noise_calls, list):
            raise ProtocolError(f"call {i}: bad call lists")
        if len(model_calls) > 1000 or len(noise_calls) > 1000:
            raise ProtocolError(f"call {i}: too many recorded calls")
        mcs = []
        for j, mc in enumerate(model_calls):
            if not isinstance(mc, dict):
                raise ProtocolError(f"call {i} model call {j}: not a record")
            mcs.append(ModelCall(x=_received(mc.get("x"), "model x"), t=_received(mc.get("t"), "model t")))
        ncs = []
        for nc in noise_calls:
            if not isinstance(nc, dict):
                raise ProtocolError(f"call {i}: bad noise call")
            ncs.append(_shape(nc.get("shape"), "noise shape"))
        seconds = call.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ProtocolError(f"call {i}: bad duration")
        out.append(
            CallRecord(
                error=error, output=output, model_calls=tuple(mcs), noise_calls=tuple(ncs), seconds=float(seconds)
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class RunRecord:
    """What a simulation job reported: the learner's function raised (`error`), or the numbers.

    `final` [N, D] are the particles at t = 1; `visited` the positions of the first particles at
    each evaluation ([k, D] each); `losses` the training losses (training runs only).
    """

    error: ErrorInfo | None
    final: Tensor | None = None
    visited: tuple[Tensor, ...] = ()
    losses: Tensor | None = None
    calls: int = 0


def _rows(value: Any, what: str, n: int | None, dim: int) -> Tensor:
    """A list of `n` (any count up to MAX_VALUES when None) rows of `dim` numbers, as float64."""
    if not isinstance(value, list) or (n is not None and len(value) != n) or len(value) * dim > MAX_VALUES:
        raise ProtocolError(f"{what}: not {n if n is not None else 'a list of'} rows")
    flat: list[Any] = []
    for row in value:
        if not isinstance(row, list) or len(row) != dim:
            raise ProtocolError(f"{what}: a row that is not {dim} numbers")
        flat.extend(row)
    values = _values(flat, None, what)
    assert values is not None
    return values.reshape(len(value), dim)


def parse_run_record(record: dict[str, Any], *, particles: int, dim: int, max_steps: int, training: bool) -> RunRecord:
    """The `run` record of a simulation job, checked against what the job asked for."""
    allowed = {"type", "nonce", "error", "final", "visited", "losses", "calls"}
    if set(record) - allowed:
        raise ProtocolError("a run record with unknown keys")
    error = _error(record.get("error"), "run error")
    if error is not None:
        return RunRecord(error=error)
    final = _rows(record.get("final"), "run final", particles, dim)
    visited_raw = record.get("visited")
    if not isinstance(visited_raw, list) or len(visited_raw) > max_steps + 1:
        raise ProtocolError(f"run visited: not a list of at most {max_steps + 1} steps")
    visited = tuple(_rows(v, "run visited", None, dim) for v in visited_raw)
    if sum(v.shape[0] for v in visited) * dim > 4 * MAX_VALUES:
        raise ProtocolError("run visited: too many values")
    losses = None
    if training:
        raw = record.get("losses")
        if not isinstance(raw, list) or not raw or len(raw) > 100_000:
            raise ProtocolError("run losses: not a list of numbers")
        losses = _values(raw, None, "run losses")
    calls = 0 if record.get("calls") is None else _int(record.get("calls"), "run calls", 0, 10**9)
    return RunRecord(error=None, final=final, visited=visited, losses=losses, calls=calls)
