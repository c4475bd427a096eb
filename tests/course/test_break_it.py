"""The Break-It lab's faults break: every (dataset x fault x step count) the lab offers, measured
through the lab itself on the shipped models, is more than 5 % worse than the healthy sampler, and
the shipped table the caption quotes (experiments/break-it.json) holds exactly these measurements."""

import json
from pathlib import Path

import pytest

from straightline.course import breakit, shipped
from straightline.course.sims import Simulations
from straightline.faults import fault_names

STATIC = Path(breakit.__file__).parent.parent / "web" / "static" / "sims"


@pytest.fixture(scope="module")
def measured():
    return breakit.measure(Simulations(shipped.load_shipped()))


def test_every_fault_hurts_at_every_offered_setting(measured):
    assert len(measured) == len(breakit.LAB_DATASETS) * len(fault_names()) * len(breakit.LAB_STEPS)
    not_worse = [row for row in measured if not row[4] > 1.05 * row[3]]
    assert not not_worse, not_worse


def test_the_quoted_table_is_the_measured_one(measured):
    shipped_rows = json.loads(breakit.TABLE_FILE.read_text(encoding="utf-8"))["rows"]
    assert shipped_rows == measured


def test_the_lab_offers_what_was_swept():
    """The page's controls: the step counts and datasets swept above, and every fault."""
    js = (STATIC / "euler-faults.js").read_text(encoding="utf-8")
    assert f"const LAB_STEPS = [{', '.join(map(str, breakit.LAB_STEPS))}];" in js
    for name in fault_names():
        assert f'["{name}", ' in js
    controls = (STATIC / "controls.js").read_text(encoding="utf-8")
    for dataset in breakit.LAB_DATASETS:
        assert f'["{dataset}", ' in controls
