"""The shape of a Build-It exercise and the helpers its checks share.

An exercise owns its test cases. A case is a list of calls of the learner's function with
arguments the trusted side chooses (data tensors, the grader's own noise_fn, probe models from
`probes.py`, integers); the sandbox runs the calls and sends back what came out and what the probe
model received. The exercise's `check_call` then decides, on the trusted side, whether the call is
right, computing the expected value with the toolkit's own code, and if not, says what is wrong in
terms that point at the mistake without handing over the solution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from ..protocol import CallRecord, ErrorInfo

__all__ = [
    "Arg",
    "Call",
    "Case",
    "Exercise",
    "CheckCall",
    "close",
    "explain_error",
    "fmt",
    "shape_str",
    "tensor_json",
]


def tensor_json(t: Tensor) -> dict[str, Any]:
    """A float32 tensor as JSON data (exact: float32 values survive the float64 round trip)."""
    t = t.detach().to(torch.float32)
    return {"shape": list(t.shape), "values": t.reshape(-1).tolist(), "dtype": "float32"}


@dataclass(frozen=True)
class Arg:
    """One argument of a call: built inside the sandbox from its JSON form."""

    kind: str  # "model", "flowmap", "tensor", "noise_fn", "int", "float"
    tensor: Tensor | None = None  # float32 data (tensor) or the noise noise_fn returns (noise_fn)
    spec: Mapping[str, Any] | None = None  # probe spec (model, flowmap)
    value: int | float | None = None  # int / float

    @classmethod
    def model(cls, spec: Mapping[str, Any]) -> "Arg":
        return cls("model", spec=dict(spec))

    @classmethod
    def flow_map(cls, spec: Mapping[str, Any]) -> "Arg":
        return cls("flowmap", spec=dict(spec))

    @classmethod
    def data(cls, tensor: Tensor) -> "Arg":
        return cls("tensor", tensor=tensor.to(torch.float32))

    @classmethod
    def noise(cls, tensor: Tensor) -> "Arg":
        return cls("noise_fn", tensor=tensor.to(torch.float32))

    @classmethod
    def integer(cls, value: int) -> "Arg":
        return cls("int", value=int(value))

    @classmethod
    def number(cls, value: float) -> "Arg":
        return cls("float", value=float(value))

    def to_json(self) -> dict[str, Any]:
        if self.kind in ("model", "flowmap"):
            return {"kind": self.kind, "spec": dict(self.spec or {})}
        if self.kind in ("tensor", "noise_fn"):
            assert self.tensor is not None
            return {"kind": self.kind, "tensor": tensor_json(self.tensor)}
        return {"kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class Call:
    """A call of the learner's function: `params` by parameter name; `positional` are passed by
    position in that order, the others by keyword."""

    params: Mapping[str, Arg]
    positional: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "args": [self.params[name].to_json() for name in self.positional],
            "kwargs": {name: arg.to_json() for name, arg in self.params.items() if name not in self.positional},
        }

    def tensor(self, name: str) -> Tensor:
        """A data or noise argument in float64, for the reference computation."""
        arg = self.params[name]
        assert arg.tensor is not None
        return arg.tensor.to(torch.float64)


@dataclass(frozen=True)
class Case:
    """A test: `visible` ones are the examples shown with the exercise (their inputs are public)."""

    id: str
    name: str
    visible: bool
    calls: tuple[Call, ...]
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "seed": self.seed, "calls": [c.to_json() for c in self.calls]}


#: check_call(case, index, records) -> None when call `index` is right, else the message to show.
CheckCall = Callable[[Case, int, tuple[CallRecord, ...]], "str | None"]

#: One named check of a call, on an exercise's view of it: None when it passes, else the message.
Check = Callable[[Any], "str | None"]


def first_problem(checks: "tuple[Check, ...]", view: Any) -> str | None:
    """The message of the first check in the table that fails (they run in order), or None."""
    for check in checks:
        message = check(view)
        if message is not None:
            return message
    return None


@dataclass(frozen=True)
class Exercise:
    """A Build-It exercise: what the learner sees, and how it is graded.

    name            the registry key, as used in chapters (`exercise: cfm_loss`) and the CLI
    function        the function the learner's code must define
    element_id      the chapter element that shows it
    signature       the signature the prompt asks for
    starter_code    what the editor starts with
    example_code    the visible example, as code a learner can run on their own machine
    hints           three hints, each more concrete than the last
    reference       the toolkit function the exercise mirrors (dotted name)
    """

    name: str
    title: str
    function: str
    element_id: str
    signature: str
    starter_code: str
    example_code: str
    hints: tuple[str, str, str]
    reference: str
    build_cases: Callable[[], tuple[Case, ...]] = field(repr=False)
    check_call: CheckCall = field(repr=False)

    @cached_property
    def cases(self) -> tuple[Case, ...]:
        """The tests, visible examples first (built once, deterministically)."""
        cases = self.build_cases()
        assert len({c.id for c in cases}) == len(cases)
        return cases

    def check_case(self, case: Case, records: tuple[CallRecord, ...]) -> str | None:
        """None when every call of the case is right, else the message for the first wrong one."""
        for i in range(len(case.calls)):
            message = self.check_call(case, i, records)
            if message is not None:
                if len(case.calls) > 1:
                    return f"In call {i + 1} of {len(case.calls)}: {message}"
                return message
        return None

    def describe(self) -> dict[str, Any]:
        """What a page needs to show the exercise (JSON data)."""
        return {
            "name": self.name,
            "title": self.title,
            "function": self.function,
            "element_id": self.element_id,
            "signature": self.signature,
            "starter_code": self.starter_code,
            "example_code": self.example_code,
            "hints": list(self.hints),
            "tests": [{"id": c.id, "name": c.name, "visible": c.visible} for c in self.cases],
        }


def close(got: Tensor, want: Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Same shape and |got - want| <= atol * max(1, |want|_max) + rtol * |want| everywhere."""
    if got.shape != want.shape:
        return False
    if not bool(torch.isfinite(got).all()):
        return False
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    return bool(((got - want).abs() <= atol * scale + rtol * want.abs()).all())


def fmt(x: float) -> str:
    """A number for a message: 4 significant digits."""
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.4g}"


def shape_str(shape: tuple[int, ...] | list[int] | torch.Size | None) -> str:
    return "unknown" if shape is None else "[" + ", ".join(str(n) for n in shape) + "]"


def explain_error(err: ErrorInfo, *, function: str, hints: Mapping[str, str] = {}) -> str:
    """An exception raised by the learner's function, with a pointer for the common ones.

    `hints` maps a fragment of the exception message (or its type name) to extra advice.
    """
    where = f" at line {err.line}" if err.line else ""
    text = f"Your function raised {err.type}{where}: {err.message}".rstrip(": ")
    advice = ""
    if err.type == "NotImplementedError":
        advice = "The starter code's `raise NotImplementedError` is still there: replace it with your code."
    elif err.type == "SystemExit":
        advice = f"{function} called sys.exit(); it should return its result instead."
    elif err.type in ("MemoryError", "KeyboardInterrupt"):
        advice = "It ran out of memory inside the grader's limit." if err.type == "MemoryError" else ""
    elif "unexpected keyword argument" in err.message:
        advice = f"Keep the parameter names of the signature: the tests call {function} with them as keywords."
    elif "required positional argument" in err.message:
        advice = "Give the optional parameters the defaults the signature shows."
    elif "not enough memory" in err.message or "DefaultCPUAllocator" in err.message:
        advice = "It ran out of memory inside the grader's limit."
    for fragment, extra in hints.items():
        if fragment in err.message or fragment == err.type:
            advice = (advice + " " + extra).strip()
            break
    return f"{text}. {advice}".strip() if advice else text
