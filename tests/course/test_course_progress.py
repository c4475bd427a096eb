"""Element state rules: what each action does, what is refused, and how states read."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from straightline.course.content import load_course
from straightline.course.progress import (
    InputError,
    apply,
    chapter_progress,
    describe,
    locks,
    validate_state,
    word_count,
)
from straightline.course.store import ElementState
from straightline.course.transfer import ImportFileError, export_progress, parse_import

FIXTURES = Path(__file__).parents[1] / "web" / "fixtures" / "course"
COURSE = load_course(FIXTURES)
E = COURSE.elements
NOW = __import__("datetime").datetime(2025, 1, 1, tzinfo=__import__("datetime").timezone.utc)


def test_word_count() -> None:
    assert word_count("") == 0
    assert word_count("  one, two;three  ") == 3
    assert word_count("Picard–Lindelöf doesn't apply") == 4
    assert word_count("x_t = (1 - t) x_0") == 4


def test_every_valid_action_yields_a_valid_state() -> None:
    cases = [
        (E["a-check"], "answer", {"option": "2"}),
        (E["b-gate"], "answer", {"answer": "one two three four five"}),
        (E["a-derivation"], "reveal", {"reveal": "hint-1"}),
        (E["b-adversarial"], "answer", {"answer": "one two three four five six seven eight"}),
        (E["b-design"], "answer", {"question": "2", "answer": "one two three four five"}),
    ]
    for element, action, form in cases:
        change = apply(element, action, form, None)
        assert validate_state(element.type, change.status, change.state) is None, element.id
        assert change.attempts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["hint-1", "hint-2", "hint-3", "solution", "hint-9", ""]), max_size=12))
def test_derivation_reveals_keep_the_state_valid(steps: list[str]) -> None:
    state = None
    hints_seen = 0
    for step in steps:
        try:
            change = apply(E["a-derivation"], "reveal", {"reveal": step}, state)
        except InputError as err:
            assert err.field == "reveal" and err.status in (409, 422)
            continue
        assert validate_state("derivation", change.status, change.state) is None
        assert change.state["hints"] >= hints_seen  # never goes back
        hints_seen = change.state["hints"]
        state = change.state


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["1", "2", "3", "4"]), min_size=1, max_size=10))
def test_check_attempts_count_and_solved_sticks(options: list[str]) -> None:
    state = None
    for option in options:
        state = apply(E["a-check"], "answer", {"option": option}, state).state
    assert state["attempts"] == len(options)
    assert state["solved"] == ("1" in options)
    assert state["chosen"] == int(options[-1])


def test_locks_follow_the_gate() -> None:
    beta = COURSE.chapters[1]
    assert set(locks(beta, {})) == {"b-adversarial", "b-design", "b-build"}
    cleared = {"b-gate": ElementState("b-gate", "checkpoint", "done", {"answer": "x", "words": 1, "rating": None}, NOW)}
    assert locks(beta, cleared) == {}
    assert locks(COURSE.chapters[0], {}) == {}


def test_progress_counts_only_available_exercises() -> None:
    p = chapter_progress(COURSE.chapters[1], {})
    assert (p.done, p.total, p.gates, p.gates_cleared) == (0, 5, 1, 0)
    assert describe(E["b-build"], None) == "not started"
    assert describe(E["a-check"], None) == "not started"


@pytest.mark.parametrize(
    ("etype", "status", "state", "problem"),
    [
        ("check", "done", {"chosen": 0, "correct": True, "attempts": 1, "solved": True}, "state.chosen must be an integer in 1..4"),
        ("check", "done", {"chosen": 1, "correct": True, "attempts": 1}, "state lacks 'solved'"),
        ("derivation", "started", {"hints": 1, "solution": False, "x": 1}, "unknown key(s) ['x']"),
        ("design", "done", {"answers": {"1": "a"}, "design": True}, "design is revealed only after all 4 answers"),
        ("checkpoint", "started", {"answer": "a", "words": 1, "rating": None}, "status must be 'done'"),
        (
            "build-it",
            "done",
            {"attempts": 1, "passed": True, "code": "x", "result": None, "passed_code": None, "run": None},
            "needs its passing code",
        ),
        ("build-it", "started", {"attempts": 1, "passed": False, "code": "x", "result": {"status": "won"}, "passed_code": None, "run": None}, "state.result must be"),
    ],
)
def test_validate_state_names_the_problem(etype: str, status: str, state: dict, problem: str) -> None:
    assert problem in (validate_state(etype, status, state) or "")


def test_export_round_trips_through_import() -> None:
    states = {
        "a-check": ElementState("a-check", "check", "done", {"chosen": 1, "correct": True, "attempts": 1, "solved": True}, NOW),
    }
    import json

    from straightline.course.store import Attempt

    data = export_progress(states, [Attempt("a-check", "check", "check", {"option": 1, "correct": True}, NOW)])
    plan = parse_import(json.dumps(data).encode(), COURSE)
    assert plan.states == list(states.values())
    assert plan.attempts[0].payload == {"option": 1, "correct": True}
    with pytest.raises(ImportFileError, match="not valid JSON"):
        parse_import(b"{", COURSE)
