"""The Build-It exercises, by name: `EXERCISES["cfm_loss"]`, `get_exercise("euler_sample")`."""

from __future__ import annotations

from ..catalog import EXERCISE_NAMES, UnknownExercise
from .base import Arg, Call, Case, Exercise
from .cfm_loss import CFM_LOSS, WEIGHTED_CFM_LOSS
from .euler_sample import EULER_SAMPLE
from .meanflow_target import MEANFLOW_TARGET

__all__ = ["EXERCISES", "Arg", "Call", "Case", "Exercise", "UnknownExercise", "get_exercise"]

EXERCISES: dict[str, Exercise] = {e.name: e for e in (CFM_LOSS, WEIGHTED_CFM_LOSS, EULER_SAMPLE, MEANFLOW_TARGET)}
assert tuple(EXERCISES) == EXERCISE_NAMES, "grader/catalog.py must list the exercises in order"


def get_exercise(name: str) -> Exercise:
    """The exercise called `name`, or `UnknownExercise` naming the accepted ones."""
    try:
        return EXERCISES[name]
    except (KeyError, TypeError):
        raise UnknownExercise(name) from None
