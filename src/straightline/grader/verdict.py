"""From what happened in the sandbox (`RunOutcome`) to the verdict (`GradeResult`).

This is the only place a submission is declared passed, and it only looks at checked numbers: a
test passes when its case record parses and the exercise's trusted check accepts every call. Exit
codes, printed text and the worker's own opinion count for nothing; a missing `done`, a record out
of order or with the wrong nonce fails the submission.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass

from .exercises import Case, Exercise
from .protocol import CallRecord, ProtocolError, parse_call_records
from .results import GradeResult, TestResult
from .settings import GraderSettings
from .worker_handle import RunOutcome

__all__ = ["build_result", "infrastructure_result"]

log = logging.getLogger(__name__)

TAMPERED = (
    "Your code interfered with the grader's reporting (it wrote to the grader's private result "
    "channel or broke the worker that reports the results), so none of its results can be trusted "
    "and the submission fails. Remove anything that writes to file descriptors or patches the grader."
)


def infrastructure_result(exercise: str, message: str, *, seconds: float = 0.0, tag: str = "") -> GradeResult:
    """The grader failed, not the submission: said plainly, and not counted as an attempt."""
    return GradeResult(
        exercise=exercise,
        status="infrastructure_error",
        message=f"The grader could not run your code: {message}. This is a problem on our side; it does not count as an attempt.",
        counts_as_attempt=False,
        duration_s=seconds,
        submission_id=tag,
    )


def _ended_how(outcome: RunOutcome, settings: GraderSettings) -> str:
    code = outcome.returncode
    if code in (128 + signal.SIGKILL, -signal.SIGKILL):
        return (
            f"it was killed, usually for going over the CPU-time limit ({settings.cpu_seconds} s) or the memory limit"
        )
    if code in (0, None):
        return "your code ended the process (sys.exit() or os._exit() outside a test, or from a thread?)"
    if code is not None and code > 128:
        return f"it was killed by signal {code - 128}"
    if code is not None and code < 0:
        return f"it was killed by signal {-code}"
    return f"your code ended the process with exit status {code}"


def _syntax_message(record: dict, code: str) -> tuple[str, int | None]:
    line = record.get("line") if isinstance(record.get("line"), int) else None
    message = str(record.get("message", "invalid syntax"))[:500]
    text = ""
    if line is not None:
        lines = code.splitlines()
        if 1 <= line <= len(lines):
            text = lines[line - 1]
        offset = record.get("offset") if isinstance(record.get("offset"), int) else None
        caret = f"\n    {' ' * max(0, min(offset or 1, len(text) + 1) - 1)}^" if text and offset else ""
        where = f"Syntax error at line {line}: {message}"
        return (f"{where}\n    {text}{caret}" if text else where), line
    return f"Syntax error: {message}", None


def _error_line(records: tuple[CallRecord, ...]) -> int | None:
    for rec in records:
        if rec.error is not None and rec.error.line:
            return rec.error.line
    return None


def build_result(
    exercise: Exercise, code: str, outcome: RunOutcome, settings: GraderSettings, warning: str | None = None
) -> GradeResult:
    """The verdict for one run of `exercise` on `code`."""
    if outcome.infra_error is not None:
        return infrastructure_result(exercise.name, outcome.infra_error, seconds=outcome.seconds, tag=outcome.tag)
    common = _common(exercise, outcome, warning)
    not_run = tuple(TestResult(c.id, c.name, c.visible, "not_run") for c in exercise.cases)
    if outcome.protocol_error is not None:
        log.info("submission %s: protocol violation: %s", outcome.tag, outcome.protocol_error)
        return GradeResult(status="failed", message=TAMPERED, tests=not_run, **common)
    terminal = _terminal_message(exercise, code, outcome)
    if terminal is not None:
        status, message, line = terminal
        return GradeResult(status=status, message=message, line=line, tests=not_run, **common)
    try:
        judged = _judge_cases(exercise, outcome, settings)
    except ProtocolError as exc:
        log.info("submission %s: bad case record: %s", outcome.tag, exc)
        return GradeResult(status="failed", message=TAMPERED, tests=not_run, **common)
    status, message, line = _summary(judged, outcome, settings)
    return GradeResult(status=status, message=message, line=line, tests=judged.tests, **common)


def _common(exercise: Exercise, outcome: RunOutcome, warning: str | None) -> dict:
    """The fields every verdict of a run carries, whatever its status."""
    return {
        "exercise": exercise.name,
        "output": outcome.output,
        "output_truncated": outcome.output_truncated,
        "duration_s": round(outcome.seconds, 4),
        "submission_id": outcome.tag,
        "warning": warning,
    }


def _terminal_message(exercise: Exercise, code: str, outcome: RunOutcome) -> tuple[str, str, int | None] | None:
    """(status, message, line) when the code never reached the tests (syntax, load, missing function)."""
    by_type = {r["type"]: r for r in outcome.records}
    if "syntax_error" in by_type:
        message, line = _syntax_message(by_type["syntax_error"], code)
        return "syntax_error", message, line
    if "load_error" in by_type:
        err = by_type["load_error"].get("error") or {}
        line = err.get("line") if isinstance(err.get("line"), int) else None
        where = f" at line {line}" if line else ""
        message = (
            f"Your code raised {str(err.get('type', 'an exception'))[:100]}{where} while loading, before any test "
            f"ran: {str(err.get('message', ''))[:500]}"
        ).rstrip(": ")
        return "failed", message, line
    if "missing_function" in by_type:
        names = [str(n)[:60] for n in by_type["missing_function"].get("names", [])][:10]
        found = f" (it defines: {', '.join(names)})" if names else ""
        message = f"Your code does not define a function named {exercise.function}{found}. The tests call {exercise.signature}."
        return "failed", message, None
    return None


@dataclass
class _Judged:
    """Every test's result, the line of the first failure's error, whether a test timed out."""

    tests: tuple[TestResult, ...]
    first_line: int | None
    timed_out: bool


def _judge_cases(exercise: Exercise, outcome: RunOutcome, settings: GraderSettings) -> _Judged:
    """Each test case's result from its records (ProtocolError for a malformed case record)."""
    case_records = {r["case"]: r for r in outcome.records if r["type"] == "case"}
    tests: list[TestResult] = []
    first_line: int | None = None
    for case in exercise.cases:
        if case.id in case_records:
            records = parse_call_records(case_records[case.id], len(case.calls))
            message = exercise.check_case(case, records)
            status = "passed" if message is None else "failed"
            tests.append(TestResult(case.id, case.name, case.visible, status, message or ""))
            if message is not None and first_line is None:
                first_line = _error_line(records)
        elif case.id == outcome.started_case:
            tests.append(_unfinished_case(case, outcome, settings))
        else:
            tests.append(TestResult(case.id, case.name, case.visible, "not_run"))
    timed_out = any(t.status == "timeout" for t in tests)
    return _Judged(tuple(tests), first_line, timed_out)


def _unfinished_case(case: Case, outcome: RunOutcome, settings: GraderSettings) -> TestResult:
    """The result of the case that was running when the run ended (a timeout or a crash)."""
    if outcome.timed_out:
        message = f"This test did not finish within the {settings.timeout_s:g} s limit: an infinite loop, or far too much work?"
        return TestResult(case.id, case.name, case.visible, "timeout", message)
    message = f"The grader's process ended during this test: {_ended_how(outcome, settings)}."
    return TestResult(case.id, case.name, case.visible, "failed", message)


def _summary(judged: _Judged, outcome: RunOutcome, settings: GraderSettings) -> tuple[str, str, int | None]:
    """(status, message, line) of a run whose tests were judged."""
    tests = judged.tests
    if not any(t.status != "not_run" for t in tests) and outcome.started_case is None:
        return _ended_while_loading(outcome, settings)
    first = next((i for i, t in enumerate(tests) if t.status in ("failed", "timeout")), None)
    if first is not None:
        t = tests[first]
        prefix = "visible example" if t.visible else "hidden test"
        message = f"Test {first + 1} ({prefix}: {t.name}) {'timed out' if t.status == 'timeout' else 'failed'}. {t.message}"
        status = "timeout" if judged.timed_out and t.status == "timeout" else "failed"
        return status, message, judged.first_line
    if outcome.done:
        return "passed", f"All {len(tests)} tests passed.", None
    ran = sum(t.status != "not_run" for t in tests)
    if outcome.timed_out:
        return "timeout", f"The time limit ({settings.timeout_s:g} s) ran out after {ran} of {len(tests)} tests.", None
    message = (
        f"The grader's process ended after {ran} of {len(tests)} tests, before reporting the rest: "
        f"{_ended_how(outcome, settings)}."
    )
    return "failed", message, None


def _ended_while_loading(outcome: RunOutcome, settings: GraderSettings) -> tuple[str, str, int | None]:
    """Nothing started: the top level of the file hung or ended the process."""
    if outcome.timed_out:
        message = (
            f"Your code did not finish loading within {settings.timeout_s:g} s. The top level of the "
            "file runs before any test: is there an infinite loop outside the function?"
        )
        return "timeout", message, None
    return "failed", f"The grader's process ended while loading your code: {_ended_how(outcome, settings)}.", None
