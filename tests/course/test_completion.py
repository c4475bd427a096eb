"""The completion page's numbers (course/completion.py): time spent is the sum of the gaps between
consecutive recorded actions, each capped at 10 minutes; chapters and exercises covered come from
the stored states; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from straightline.course.completion import GAP_CAP_S, READING_LIST, completion, format_duration, time_spent_s
from straightline.course.content import load_course
from straightline.course.store import Attempt, ElementState, ProgressStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def test_time_spent_sums_gaps_capped_at_ten_minutes() -> None:
    minutes = [0, 2, 5, 45, 47, 200]  # gaps 2, 3, 40 -> 10, 2, 153 -> 10
    times = [T0 + timedelta(minutes=m) for m in reversed(minutes)]  # order does not matter
    assert GAP_CAP_S == 600
    assert time_spent_s(times) == (2 + 3 + 10 + 2 + 10) * 60
    assert time_spent_s([]) == 0 and time_spent_s([T0]) == 0
    assert format_duration(27 * 60) == "27 min" and format_duration(125 * 60 + 10) == "2 h 05 min"


def test_completion_numbers_from_a_stored_history(store_url: str) -> None:
    course = load_course()
    store = ProgressStore(store_url)
    first = course.chapters[0]
    checks = [e for e in first.elements if e.type == "check"]
    done = [ElementState(e.id, "check", "done", {"chosen": 1, "correct": True, "attempts": 1, "solved": True}, T0) for e in first.elements
            if e.type == "check"]
    derivations = [e for e in first.elements if e.type == "derivation"]
    done += [ElementState(e.id, "derivation", "done", {"hints": 0, "solution": True}, T0) for e in derivations]
    attempts = [Attempt(s.element_id, s.element_type, "check" if s.element_type == "check" else "derivation-solution", {}, T0 + timedelta(minutes=7 * i))
                for i, s in enumerate(done)]
    store.replace("learner-c", done, attempts)
    result = completion(course, store.states("learner-c"), store.attempts("learner-c"))
    n = len(done)
    assert result.total.done == n and result.actions == n
    assert result.seconds == (n - 1) * 7 * 60
    assert result.first == T0 and result.last == T0 + timedelta(minutes=7 * (n - 1))
    expected_complete = 1 if all(e.type in ("check", "derivation") for e in first.elements if e.interactive) else 0
    assert result.chapters_complete == expected_complete and result.chapters_started == 1
    assert result.chapters[0][2].done == n and all(p.done == 0 for _, _, p in result.chapters[1:])
    assert checks
    store.close()


def test_the_reading_list_has_the_guide_and_the_mit_notes_with_links() -> None:
    titles = " ".join(r.title for r in READING_LIST)
    assert "Flow Matching Guide and Code" in titles and "6.S184" in titles
    assert all(r.url.startswith("https://") for r in READING_LIST)
