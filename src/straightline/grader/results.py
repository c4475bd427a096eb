"""What grading a submission produces: `GradeResult` (JSON-serialisable) and its `TestResult`s.

Statuses of a submission:

    passed                  every test passed
    failed                  a test failed, the code raised while loading, the function is missing,
                            or the code broke the rules of the sandbox (exited, wrote to the
                            grader's channel, ran out of memory/CPU)
    syntax_error            the code does not compile; `message` names the line
    timeout                 the wall-clock limit ran out; the test that hung is marked `timeout`
    infrastructure_error    the grader itself failed (sandbox could not start, ...): reported as
                            such, and `counts_as_attempt` is False

Statuses of a test: passed, failed, timeout, not_run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["GradeResult", "TestResult", "SUBMISSION_STATUSES"]

SubmissionStatus = Literal["passed", "failed", "syntax_error", "timeout", "infrastructure_error"]
TestStatus = Literal["passed", "failed", "timeout", "not_run"]
SUBMISSION_STATUSES = ("passed", "failed", "syntax_error", "timeout", "infrastructure_error")


@dataclass(frozen=True)
class TestResult:
    """One test of an exercise: `visible` tests are the example shown with the exercise."""

    __test__ = False  # not a pytest test class

    id: str
    name: str
    visible: bool
    status: TestStatus
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class GradeResult:
    """The graded submission. `to_dict()` gives plain JSON data; `from_dict` reads it back.

    `message` is the one thing to show first: the first failure (test, what was expected, a
    pointer), the syntax error with its line, the hung test, or the infrastructure problem.
    `output` is what the learner's code printed (capped; `output_truncated` says when).
    `line` is the submission line the message refers to, when there is one.
    """

    exercise: str
    status: SubmissionStatus
    message: str
    tests: tuple[TestResult, ...] = ()
    counts_as_attempt: bool = True
    line: int | None = None
    output: str = ""
    output_truncated: bool = False
    duration_s: float = 0.0
    submission_id: str = ""
    warning: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def first_failure(self) -> TestResult | None:
        return next((t for t in self.tests if t.status in ("failed", "timeout")), None)

    @property
    def passed_count(self) -> int:
        return sum(t.passed for t in self.tests)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tests"] = [asdict(t) for t in self.tests]
        data["passed"] = self.passed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GradeResult":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["tests"] = tuple(TestResult(**t) for t in data.get("tests", ()))
        return cls(**fields)
