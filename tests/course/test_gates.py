"""Checkpoint gates: low-effort answers are refused, and a gate holds the chapters after it
until it is cleared or explicitly skipped; the skip is stored (SQLite and PostgreSQL) and
travels through export and import."""

from __future__ import annotations

import json

import pytest

from straightline.course.content import load_course
from straightline.course.progress import InputError, apply, describe, locks, open_gates, validate_state
from straightline.course.store import ProgressStore
from straightline.course.transfer import export_progress, parse_import

COURSE = load_course()
GATE = COURSE.elements["c1-unique-trajectories"]
LEARNER = "f" * 32


def _chapter(number: int):
    return COURSE.chapters[number]


def test_forty_repetitions_of_one_word_do_not_clear_the_gate() -> None:
    with pytest.raises(InputError) as caught:
        apply(GATE, "answer", {"answer": " ".join(["blah"] * 40)}, None)
    message = caught.value.message
    assert caught.value.field == "answer" and caught.value.status == 422
    assert "40 words but only 1 different one" in message and "at least 20 different words" in message


def test_a_few_words_cycled_do_not_clear_it_either() -> None:
    cycled = " ".join(["the field averages velocities"] * 12)  # 48 words, 4 different
    with pytest.raises(InputError, match="only 4 different ones"):
        apply(GATE, "answer", {"answer": cycled}, None)


REAL_ANSWER = (
    "A velocity field gives each point and time one velocity, so the ODE from any start has a "
    "single solution by Picard-Lindelof. If history mattered, two particles at the same place "
    "would need different velocities there, and a network seeing only position and time would "
    "learn their average, bending the routes rather than crossing them."
)


def test_a_real_answer_clears_the_gate() -> None:
    change = apply(GATE, "answer", {"answer": REAL_ANSWER}, None)
    assert change.status == "done" and validate_state("checkpoint", change.status, change.state) is None


def test_the_model_answer_does_not_blame_averaging_for_blur() -> None:
    text = GATE.fields["model_answer"]
    assert "land between the modes" not in text and "Chapter 3 proves" in text
    assert "few" in text and "badly" in text  # the two real causes of blur
    prose = _chapter(1).path.read_text()
    assert "blurring\" that averaged" not in prose


def test_skipping_is_a_valid_state_that_opens_the_next_chapters() -> None:
    change = apply(GATE, "skip", {}, None)
    assert change.state == {"skipped": True} and change.status == "started"
    assert validate_state("checkpoint", change.status, change.state) is None
    assert validate_state("checkpoint", "done", change.state) is not None  # a skip is not a clear
    answered = apply(GATE, "answer", {"answer": REAL_ANSWER}, None)
    with pytest.raises(InputError) as caught:
        apply(GATE, "skip", {}, answered.state)
    assert caught.value.status == 409


def test_store_records_a_skip_and_export_import_carry_it(store_url: str) -> None:
    store = ProgressStore(store_url)
    try:
        assert [g.id for _, g in open_gates(COURSE, _chapter(2), store.states(LEARNER))] == ["c1-unique-trajectories"]
        assert open_gates(COURSE, _chapter(1), store.states(LEARNER)) == []  # only earlier chapters
        store.update(LEARNER, GATE.id, GATE.type, lambda old: apply(GATE, "skip", {}, old))
        states = store.states(LEARNER)
        assert states[GATE.id].state == {"skipped": True} and states[GATE.id].status == "started"
        assert open_gates(COURSE, _chapter(2), states) == []
        assert describe(GATE, states[GATE.id]) == "skipped, not answered"
        raw = json.dumps(export_progress(states, store.attempts(LEARNER))).encode()
        plan = parse_import(raw, COURSE)
        other = "e" * 32
        store.replace(other, plan.states, plan.attempts)
        assert store.states(other)[GATE.id].state == {"skipped": True}
        assert [a.kind for a in store.attempts(other)] == ["checkpoint-skip"]
        later = [g.id for _, g in open_gates(COURSE, _chapter(8), store.states(other))]
        assert later == ["c3-gate", "c6-gate", "c7-gate"]  # the skipped gate is open; the later gates still hold
    finally:
        store.close()
