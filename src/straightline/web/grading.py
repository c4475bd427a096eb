"""The web app's Build-It grader: one `Grader` per app, and what the Build-It panels need to show.

`attach_grader(ctx)` creates the grader from the web settings (started by the app's lifespan,
closed at shutdown) and gives the templates:

    exercise(name)   the exercise's description (signature, starter and example code, hints, the
                     tests' names) plus `simulation`: "euler" or "train"; None for an unknown name
    grading          the grader's Availability: `ok` False with the plain reason (bubblewrap
                     missing, with how to install it), or `unsafe` True with the warning
    result_view(d)   a stored grade as the template shows it (tests in order, counts, first failure)
    code_spans(t)    plain text (a hint) with `backticks` shown as code
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from ..grader.catalog import SIMULATIONS, UnknownExercise
from ..grader.grader import Grader
from ..grader.settings import GraderSettings
from .hosts import GRADE_TOKEN_SLOT

# The exercises themselves (and torch) load when a Build-It panel is first shown, not at start-up.

if TYPE_CHECKING:
    from .deps import AppContext
    from .settings import Settings

__all__ = ["attach_grader", "grader_settings", "exercise_info", "result_view"]


def grader_settings(settings: "Settings") -> GraderSettings:
    extra: dict[str, Any] = {}
    if settings.grader_concurrency is not None:
        extra["max_concurrent"] = settings.grader_concurrency
    if settings.grader_warm_workers is not None:
        extra["warm_workers"] = settings.grader_warm_workers
    if settings.grader_fork_server is not None:
        extra["fork_server"] = settings.grader_fork_server
    if settings.grader_per_client is not None:
        extra["max_per_client"] = settings.grader_per_client
    return GraderSettings(unsafe_local=settings.unsafe_local_grading, prepare_simulations=True, **extra)


@lru_cache(maxsize=None)
def exercise_info(name: str) -> dict[str, Any] | None:
    from ..grader.exercises import get_exercise

    try:
        info = get_exercise(name).describe()
    except UnknownExercise:
        return None
    info["simulation"] = SIMULATIONS.get(name)
    info["visible_tests"] = [t for t in info["tests"] if t["visible"]]
    info["hidden_count"] = sum(1 for t in info["tests"] if not t["visible"])
    return info


STATUS_TEXT = {
    "passed": "Passed",
    "failed": "Not passing yet",
    "syntax_error": "Syntax error",
    "timeout": "Timed out",
    "infrastructure_error": "Not graded: a problem on our side",
}
TEST_STATUS_TEXT = {"passed": "passed", "failed": "failed", "timeout": "timed out", "not_run": "not run"}


def result_view(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored GradeResult dict, with what the template needs computed once."""
    if not isinstance(result, dict):
        return None
    tests = [t for t in result.get("tests", []) if isinstance(t, dict)]
    passed = sum(1 for t in tests if t.get("status") == "passed")
    first = next((i for i, t in enumerate(tests) if t.get("status") in ("failed", "timeout")), None)
    status = result.get("status", "failed")
    return {
        **result,
        "tests": tests,
        "passed_count": passed,
        "ran_count": sum(1 for t in tests if t.get("status") != "not_run"),
        "first_failure": first,
        "status_text": STATUS_TEXT.get(status, status),
        "test_status_text": TEST_STATUS_TEXT,
    }


_CODE_SPAN = re.compile(r"`([^`]+)`")


def code_spans(text: str) -> Markup:
    """Plain text with `backticks` as <code> (everything else escaped)."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


def renew_grader(ctx: "AppContext") -> Grader:
    """The app's grader, replaced by a fresh (not yet started) one if an earlier run closed it."""
    if ctx.grader.closed:
        ctx.grader = Grader(ctx.grader.settings)
    return ctx.grader


def start_grader(ctx: "AppContext") -> Grader:
    """Start the app's grader: its thread and warm workers (a submission also starts it)."""
    return renew_grader(ctx).start()


def attach_grader(ctx: "AppContext", settings: GraderSettings | None = None) -> Grader:
    """Create the app's grader (not started: the lifespan starts it) and the template helpers.

    `settings` replaces the ones made from the web settings (tests: a grader without bubblewrap).
    """
    grader = Grader(settings or grader_settings(ctx.settings))
    ctx.grader = grader
    ctx.renderer.env.globals.update(
        exercise=exercise_info,
        grading=grader.availability(),
        result_view=result_view,
        code_spans=code_spans,
        grade_token_slot=GRADE_TOKEN_SLOT,  # filled per learner and host by HostMiddleware (unsafe grading)
    )
    return grader
