"""Build-It grader: runs learners' code in a sandbox and checks it against the toolkit.

    from straightline.grader import Grader, GraderSettings

    grader = Grader(GraderSettings())
    result = await grader.submit(learner_id, "cfm_loss", code)   # a GradeResult
    result.to_dict()                                              # JSON for the progress store

Two rooms, named by trust:

- `inside/` runs INSIDE the sandbox (standard library and torch only): the worker's entry point
  `worker`, the fork server's `zygote`, `probes`, the simulation kit `simkit`, the fork server's
  `control` records and the `seccomp` filter assembler.
- the rest is the trusted side: `grader` (the service: queue and API), `pool` (warm workers),
  `sandbox` (what the sandbox sees, the bubblewrap command), `sandbox_process` (a bubblewrap
  process and its PID namespace), `worker_handle` (a worker's record protocol and base class),
  `solo_worker` (a worker in a sandbox of its own: the fallback), `fork_server` and
  `forked_worker` (the default: children of one long-lived sandbox), `protocol` (strict parsing of
  what comes out), `verdict` with `results` and `report` (the decision), `runs` ("run it in the
  simulation"), `catalog`, `settings` and `exercises`.

The grader uses the toolkit's public API only, never `straightline.web`.
"""

import importlib as _importlib
from typing import Any as _Any

# Public name -> submodule. Loaded on first use, so that the web app can create a Grader and check
# exercise names at start-up without importing torch (the exercises and runs need it).
_LAZY: dict[str, str] = {
    "EXERCISES": "exercises",
    "Exercise": "exercises",
    "get_exercise": "exercises",
    "UnknownExercise": "catalog",
    "EXERCISE_NAMES": "catalog",
    "SIMULATIONS": "catalog",
    "Grader": "grader",
    "GraderUnavailable": "grader",
    "ClientBusy": "grader",
    "LearnerBusy": "grader",
    "QueueFull": "grader",
    "SubmissionRefused": "grader",
    "SubmissionTooLarge": "grader",
    "format_report": "report",
    "GradeResult": "results",
    "TestResult": "results",
    "RunResult": "runs",
    "Availability": "sandbox",
    "check_availability": "sandbox",
    "GraderSettings": "settings",
}


def __getattr__(name: str) -> _Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'straightline.grader' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "EXERCISE_NAMES",
    "Availability",
    "ClientBusy",
    "EXERCISES",
    "Exercise",
    "GradeResult",
    "RunResult",
    "SIMULATIONS",
    "Grader",
    "GraderSettings",
    "GraderUnavailable",
    "LearnerBusy",
    "QueueFull",
    "SubmissionRefused",
    "SubmissionTooLarge",
    "TestResult",
    "UnknownExercise",
    "check_availability",
    "format_report",
    "get_exercise",
]
