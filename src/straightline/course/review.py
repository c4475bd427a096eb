"""The final review: questions drawn from the course's checks and gates, weighted by this learner's history.

Every check and checkpoint of the course is in the pool, with a weight from what the learner did:

    check       answered wrong at the first attempt        3   ("wrong first")
                never answered                             2   ("skipped")
                answered right at the first attempt        1
    checkpoint  self-rated "partly" or "missed"            2
                skipped or never answered                  2   ("skipped")
                answered (rated "got it", or not rated)    1

A review round draws `round_size(len(pool))` items (ROUND_SIZE, at most half the pool, so the
weights have room to matter) without replacement, each draw taking an item with
probability proportional to its weight among those left (Efraimidis–Spirakis: the items with the
largest u ** (1 / weight), u uniform from a generator seeded by the learner id and the round
number). The same learner and round always get the same questions; `round` 0, 1, 2, ... give new
sets. Only the original first attempts decide the weights: review answers are stored as attempts of
their own kinds (`review-check`, `review-checkpoint`, `review-rating`) and change no element state.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .content import Course, Element
from .store import Attempt, ElementState

__all__ = ["REASONS", "REVIEW_KINDS", "ROUND_SIZE", "WEIGHTS", "ReviewItem", "draw", "review_answers", "review_pool", "round_size"]

ROUND_SIZE = 8
MAX_ROUND = 10_000
WEIGHTS = {"wrong-first": 3, "partly-missed": 2, "skipped": 2, "right-first": 1, "answered": 1}
REASONS = {
    "wrong-first": "you answered this wrong at first",
    "partly-missed": "you rated your answer partly right or missed",
    "skipped": "you skipped this or have not reached it",
    "right-first": "you answered this right at first",
    "answered": "you answered this gate",
}
REVIEW_KINDS = {"check": ("review-check",), "checkpoint": ("review-checkpoint", "review-rating")}


@dataclass(frozen=True)
class ReviewItem:
    element: Element
    reason: str  # a key of WEIGHTS

    @property
    def weight(self) -> int:
        return WEIGHTS[self.reason]


def _first_check_answers(attempts: Iterable[Attempt]) -> dict[str, bool]:
    """element id -> whether the learner's first answer to that check was right."""
    first: dict[str, bool] = {}
    for a in attempts:
        if a.kind == "check" and a.element_id not in first:
            first[a.element_id] = bool(a.payload.get("correct"))
    return first


def _checkpoint_reason(state: ElementState | None) -> str:
    if state is None or state.state.get("skipped") or not state.state.get("answer"):
        return "skipped"
    return "partly-missed" if state.state.get("rating") in ("partly", "missed") else "answered"


def review_pool(course: Course, states: Mapping[str, ElementState], attempts: Sequence[Attempt]) -> list[ReviewItem]:
    """Every check and checkpoint of the course, in course order, with the learner's reason."""
    first = _first_check_answers(attempts)
    items = []
    for chapter in course.chapters:
        for element in chapter.elements:
            if element.type == "check":
                reason = "skipped" if element.id not in first else ("right-first" if first[element.id] else "wrong-first")
                items.append(ReviewItem(element, reason))
            elif element.type == "checkpoint":
                items.append(ReviewItem(element, _checkpoint_reason(states.get(element.id))))
    return items


def round_size(pool_size: int) -> int:
    """How many questions a round holds: ROUND_SIZE, but at most half the pool (rounded up)."""
    return min(ROUND_SIZE, (pool_size + 1) // 2)


def draw(pool: Sequence[ReviewItem], learner: str, round_number: int = 0, size: int | None = None) -> list[ReviewItem]:
    """`size` (default `round_size`) items of `pool` drawn by weight without replacement, seeded by
    learner and round; returned in course order."""
    size = round_size(len(pool)) if size is None else size
    if not 0 <= round_number <= MAX_ROUND:
        raise ValueError(f"round {round_number} is out of range: use 0..{MAX_ROUND}")
    seed = hashlib.sha256(f"review\x00{learner}\x00{round_number}".encode()).digest()
    rng = random.Random(seed)
    keys = [rng.random() ** (1.0 / item.weight) for item in pool]
    chosen = sorted(range(len(pool)), key=lambda i: keys[i], reverse=True)[:size]
    return [pool[i] for i in sorted(chosen)]


def review_answers(attempts: Iterable[Attempt], round_number: int) -> dict[str, dict[str, object]]:
    """element id -> the learner's latest review answers in this round: {"option", "correct"}
    for a check, {"text", "rating"} for a checkpoint."""
    out: dict[str, dict[str, object]] = {}
    for a in attempts:
        if not a.kind.startswith("review-") or a.payload.get("round") != round_number:
            continue
        entry = out.setdefault(a.element_id, {})
        if a.kind == "review-check":
            entry.update(option=a.payload.get("option"), correct=a.payload.get("correct"))
        elif a.kind == "review-checkpoint":
            entry.update(text=a.payload.get("text"), rating=None)
        elif a.kind == "review-rating":
            entry["rating"] = a.payload.get("rating")
    return out
