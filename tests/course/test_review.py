"""The final review (course/review.py): the documented weights, a deterministic draw per learner
and round that favours what the learner got wrong first or skipped, and review answers that are
stored as attempts of their own without touching the original answers; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
import pytest

from straightline.course.content import Course, load_course
from straightline.course.progress import apply
from straightline.course.review import ROUND_SIZE, WEIGHTS, draw, review_answers, review_pool, round_size
from straightline.course.store import ProgressStore

LEARNER = "review-learner-0001"


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course()


def _wrong_and_right(course: Course, element_id: str) -> tuple[str, str]:
    options = course.elements[element_id].html["options"]
    right = next(i for i, o in enumerate(options, 1) if o["correct"])
    return str(1 + right % 4), str(right)


def seed_history(store: ProgressStore, course: Course) -> dict[str, str]:
    """Checks alternately answered wrong first (then right) and right first; the remaining third
    untouched; the first gate rated 'missed', the second skipped. Returns id -> expected reason."""
    checks = [e for e in course.elements.values() if e.type == "check"]
    gates = [e for e in course.elements.values() if e.type == "checkpoint"]
    expected = {}
    for i, element in enumerate(checks):
        wrong, right = _wrong_and_right(course, element.id)
        answers = {0: [wrong, right], 1: [right]}.get(i % 3, [])
        for option in answers:
            store.update(LEARNER, element.id, "check", lambda old, o=option, e=element: apply(e, "answer", {"option": o}, old))
        expected[element.id] = {0: "wrong-first", 1: "right-first", 2: "skipped"}[i % 3]
    words = "paths cannot cross since each solution of an ordinary differential equation with a smooth velocity is unique".split()
    answer = {"answer": " ".join(words[i % len(words)] + str(i // len(words)) for i in range(200))}
    store.update(LEARNER, gates[0].id, "checkpoint", lambda old: apply(gates[0], "answer", answer, old))
    store.update(LEARNER, gates[0].id, "checkpoint", lambda old: apply(gates[0], "rating", {"rating": "missed"}, old))
    expected[gates[0].id] = "partly-missed"
    for gate in gates[1:]:
        expected[gate.id] = "skipped"
    return expected


def test_each_item_gets_the_reason_and_weight_of_the_learners_history(store_url: str, course: Course) -> None:
    store = ProgressStore(store_url)
    expected = seed_history(store, course)
    pool = review_pool(course, store.states(LEARNER), store.attempts(LEARNER))
    assert {i.element.id: i.reason for i in pool} == expected
    assert WEIGHTS == {"wrong-first": 3, "partly-missed": 2, "skipped": 2, "right-first": 1, "answered": 1}
    store.close()


def test_the_draw_is_deterministic_and_favours_wrong_first_then_skipped(store_url: str, course: Course) -> None:
    store = ProgressStore(store_url)
    seed_history(store, course)
    pool = review_pool(course, store.states(LEARNER), store.attempts(LEARNER))
    assert draw(pool, LEARNER, 3) == draw(pool, LEARNER, 3)
    assert draw(pool, LEARNER, 3) != draw(pool, LEARNER, 4)
    assert draw(pool, LEARNER, 0) != draw(pool, "someone-else", 0)
    rounds = 400
    seen: Counter[str] = Counter()
    for r in range(rounds):
        chosen = draw(pool, LEARNER, r)
        assert len(chosen) == round_size(len(pool)) == len({i.element.id for i in chosen})  # without replacement
        assert [pool.index(i) for i in chosen] == sorted(pool.index(i) for i in chosen)  # course order
        seen.update(i.reason for i in chosen)
    sizes = Counter(i.reason for i in pool)
    rate = {reason: seen[reason] / (sizes[reason] * rounds) for reason in sizes}
    # per item, how often it is drawn: wrong-first (weight 3) > skipped (2) > right-first (1)
    assert rate["wrong-first"] > 1.5 * rate["right-first"], rate
    assert rate["wrong-first"] > rate["skipped"] > rate["right-first"], rate
    store.close()


def test_a_round_holds_at_most_half_the_pool() -> None:
    assert [round_size(n) for n in (0, 1, 2, 9, 10, 16, 17, 40)] == [0, 1, 1, 5, 5, 8, ROUND_SIZE, ROUND_SIZE]


def test_a_round_out_of_range_is_refused(course: Course) -> None:
    with pytest.raises(ValueError, match=r"round -1 is out of range: use 0..10000"):
        draw([], LEARNER, -1)


def test_review_answers_are_their_own_attempts_and_leave_the_original_untouched(store_url: str, course: Course) -> None:
    store = ProgressStore(store_url)
    seed_history(store, course)
    check = next(e for e in course.elements.values() if e.type == "check")
    before_states, before_attempts = store.states(LEARNER), store.attempts(LEARNER)
    wrong, right = _wrong_and_right(course, check.id)
    store.record(LEARNER, check.id, "check", "review-check", {"option": int(right), "correct": True, "round": 2})
    assert store.states(LEARNER) == before_states
    after = store.attempts(LEARNER)
    assert after[: len(before_attempts)] == before_attempts and after[-1].kind == "review-check"
    pool = review_pool(course, store.states(LEARNER), after)  # the first answer (wrong) still decides
    assert next(i for i in pool if i.element.id == check.id).reason == "wrong-first"
    assert review_answers(after, 2) == {check.id: {"option": int(right), "correct": True}}
    assert review_answers(after, 1) == {}
    store.close()
