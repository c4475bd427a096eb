"""Build-It grader: runs learners' code in a sandbox and checks it against the toolkit.

    from straightline.grader import Grader, GraderSettings

    grader = Grader(GraderSettings())
    result = await grader.submit(learner_id, "cfm_loss", code)   # a GradeResult
    result.to_dict()                                              # JSON for the progress store

Modules: `exercises` (the exercises, their tests and checks), `sandbox` (what the sandbox sees,
the bubblewrap command), `seccomp` (the process filter), `sandbox_worker` and `probes` (the code
that runs inside), `worker_process` and `pool` (worker processes, warm pool), `protocol` (strict
parsing of what comes out), `verdict` (the decision), `grader` (queue and API), `results`,
`report`, `settings`. The grader uses the toolkit's public API only, never `straightline.web`.
"""

from .exercises import EXERCISES, Exercise, UnknownExercise, get_exercise
from .grader import Grader, GraderUnavailable, LearnerBusy, QueueFull, SubmissionRefused, SubmissionTooLarge
from .report import format_report
from .results import GradeResult, TestResult
from .sandbox import Availability, check_availability
from .settings import GraderSettings

__all__ = [
    "Availability",
    "EXERCISES",
    "Exercise",
    "GradeResult",
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
