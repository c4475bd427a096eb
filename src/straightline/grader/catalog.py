"""What the grader offers, by name, without importing torch: the web app's routes and the CLI's
parser check names against this before anything heavier loads.

`exercises/` defines the exercises themselves (and a test pins that their names match these).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "EXERCISE_NAMES",
    "SIMULATIONS",
    "EULER_STEPS",
    "DEFAULT_EULER_STEPS",
    "UnknownExercise",
    "check_exercise",
]

EXERCISE_NAMES: tuple[str, ...] = ("cfm_loss", "weighted_cfm_loss", "euler_sample", "meanflow_target")

#: exercise name -> what its passing function drives ("run it in the simulation")
SIMULATIONS: dict[str, Literal["euler", "train"]] = {
    "euler_sample": "euler",
    "cfm_loss": "train",
    "weighted_cfm_loss": "train",
    "meanflow_target": "train",  # trains a tiny flow-map network with the learner's target
}

#: Euler steps a learner may choose for euler_sample, and the default.
EULER_STEPS = (1, 100)
DEFAULT_EULER_STEPS = 20


class UnknownExercise(KeyError):
    """No exercise of that name; the message lists the accepted ones."""

    def __init__(self, name: object):
        self.name = name
        self.message = f"unknown exercise {name!r}; accepted: {', '.join(EXERCISE_NAMES)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def check_exercise(name: object) -> str:
    """`name` if it is an exercise, else `UnknownExercise` naming the accepted ones."""
    if not isinstance(name, str) or name not in EXERCISE_NAMES:
        raise UnknownExercise(name)
    return name
