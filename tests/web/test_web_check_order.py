"""Check options are shown in a per-learner order: stable for a learner, different between
learners, the right answer first in no more than half of the checks for any learner, each
explanation with its own option, and the order is the server's (it holds without JavaScript)."""

from __future__ import annotations

import math
import re
from collections import Counter

from fastapi.testclient import TestClient

from straightline.course.content import Course, load_course
from straightline.course.progress import locks

COURSE = load_course()
CHECKS = [e for c in COURSE.chapters for e in c.elements if e.type == "check"]
FRAGMENT = {"X-Straightline-Fragment": "1"}
# the checks a new learner can open (those after a checkpoint gate wait for it)
OPEN_CHECKS = [e for c in COURSE.chapters for e in c.elements if e.type == "check" and e.id not in locks(c, {})]


def _right(element) -> int:
    return next(i for i, o in enumerate(element.html["options"], 1) if o["correct"])


def test_option_order_is_a_stable_permutation_for_every_learner() -> None:
    for k in range(2000):
        learner = f"{k:032x}"
        orders = [COURSE.option_order(e.id, learner) for e in CHECKS]
        assert all(sorted(o) == [1, 2, 3, 4] for o in orders)
        assert orders == [COURSE.option_order(e.id, learner) for e in CHECKS]
        first_right = sum(order[0] == _right(e) for order, e in zip(orders, CHECKS))
        assert first_right <= math.ceil(len(CHECKS) / 4) <= len(CHECKS) / 2, learner
        positions = Counter(order.index(_right(e)) for order, e in zip(orders, CHECKS))
        assert max(positions.values()) - min(positions.values()) <= 1  # balanced over A..D


def test_learners_see_different_orders() -> None:
    seen = {tuple(COURSE.option_order(e.id, f"{k:032x}") for e in CHECKS) for k in range(50)}
    assert len(seen) == 50


def _shown(client: TestClient, element_id: str) -> list[int]:
    html = client.get(f"/elements/{element_id}", headers=FRAGMENT).text
    return [int(v) for v in re.findall(r'<input type="radio" name="option" value="(\d)"', html)]


def test_pages_show_each_learner_a_stable_balanced_order(real_client: TestClient) -> None:
    orders: set[tuple[tuple[int, ...], ...]] = set()
    for _ in range(12):
        real_client.cookies.clear()
        real_client.get("/")  # a new learner
        shown = [tuple(_shown(real_client, e.id)) for e in OPEN_CHECKS]
        assert shown == [tuple(_shown(real_client, e.id)) for e in OPEN_CHECKS]  # stable for this learner
        assert all(sorted(order) == [1, 2, 3, 4] for order in shown)
        assert sum(order[0] == _right(e) for order, e in zip(shown, OPEN_CHECKS)) <= len(OPEN_CHECKS) / 2
        orders.add(tuple(shown))
    assert len(orders) > 1


def test_explanations_follow_their_options_in_the_shown_order(real_client: TestClient) -> None:
    check = CHECKS[0]
    real_client.get("/")
    shown = _shown(real_client, check.id)
    page = real_client.post(f"/elements/{check.id}/check", data={"option": str(_right(check))}, headers=FRAGMENT).text
    labels = re.findall(r'<label for="' + check.id + r'-o(\d)">', page)
    assert [int(n) for n in labels] == shown  # the order survives answering
    terms = re.findall(r"<dt>.*?</dt>\s*<dd>(.*?)</dd>", page, re.S)
    assert len(terms) == 4
    for n, explanation in zip(shown, terms):
        assert _words(explanation) == _words(check.html["options"][n - 1]["explanation"])


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
