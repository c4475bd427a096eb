"""Content validation of the direct-manipulation syntax: `{predict}` (a rule, its simulation in the
same chapter, options naming the rule's outcomes) and `{explore}` (a model, its constants,
starting values in range, [[name]] / [[=name]] placeholders outside math); a broken block stops
the course from loading with file, line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from straightline.course.content import ContentError, load_course

from content_copies import edited_copy

FIXTURES = Path(__file__).parents[1] / "web" / "fixtures" / "manipulate"


def _broken(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    content, _, text = edited_copy(FIXTURES, tmp_path, "00-predict.md", old, new)
    return content, text


CASES = [
    # (old, new, line needle, message fragment)
    ("rule: field-at-zero", "rule: guess-anything", "```{predict} p-choice", "rule 'guess-anything' is not known (known: ot-straightens"),
    ("sim: p-field\nrule", "sim: p-euler\nrule", "```{predict} p-choice", "sim 'p-euler' must be the id of a 'velocity-field' simulation"),
    ("sim: p-euler\nrule", "sim: nowhere\nrule", "```{predict} p-point", "sim 'nowhere' must be the id of a 'euler-steps' simulation"),
    ("  - outcome: outward\n", "  - outcome: sideways\n", "```{predict} p-choice", "outcome 'sideways' is not one of one-point, nearest-data, outward"),
    ("  - outcome: outward\n    text: Outwards.\n", "", "```{predict} p-choice", "needs 2 to 4 options"),
    ("  - outcome: outward\n", "  - outcome: one-point\n", "```{predict} p-choice", "outcome 'one-point' is used twice"),
    ("  Where does one Euler step land? Click on the picture.\n",
     "  Where does one Euler step land?\noptions:\n  - outcome: a\n    text: A\n", "```{predict} p-point", "takes a click on the picture, not options"),
    ("model: lerp", "model: tangle", "```{explore} p-explore", "model 'tangle' is not known (known: lerp, sd3-shift, cfg)"),
    ("  x_1: [2, 1.5]\n", "", "```{explore} p-explore", "given must set exactly ['x_0', 'x_1']"),
    ("  x_1: [2, 1.5]\n", "  x_1: [2]\n", "```{explore} p-explore", "given x_1 must be 2 numbers"),
    ("text: |\n  At $t$", "values:\n  t: 1.5\ntext: |\n  At $t$", "```{explore} p-explore", "value of t must be a number in [0, 1], got 1.5"),
    ("the point is [[=x_t]]", "the point is [[=y_t]]", "```{explore} p-explore", "[[=y_t]] is not a output of this model (known: one_minus_t, x_t, u)"),
    ("At $t$ = [[t]] the", "At $t$ = 0.3 the", "```{explore} p-explore", "needs at least one draggable number, e.g. [[t]]"),
    ("At $t$ = [[t]] the", "At $t = [[t]]$ the", "```{explore} p-explore", "[[t]] sits inside math"),
]


@pytest.mark.parametrize(("old", "new", "needle", "message"), CASES, ids=[c[3][:40] for c in CASES])
def test_a_broken_block_names_file_line_and_problem(tmp_path: Path, old: str, new: str, needle: str, message: str) -> None:
    content, text = _broken(tmp_path, old, new)
    with pytest.raises(ContentError) as info:
        load_course(content)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if needle in s)
    assert info.value.line == line, str(info.value)
    assert message in info.value.message, str(info.value)


def test_the_fixture_and_the_course_load_with_their_blocks() -> None:
    course = load_course(FIXTURES)
    explore = course.elements["p-explore"]
    assert explore.html["text"].count('class="xp-var" data-var="t"') == 1
    assert 'class="xp-out" data-out="x_t"' in explore.html["text"]
    assert explore.html["config"]["vars"]["t"] == {"min": 0.0, "max": 1.0, "step": 0.05, "value": 0.25}
    assert course.elements["p-choice"].interactive and not explore.interactive
    real = load_course()
    kinds = [e.type for e in real.elements.values()]
    assert kinds.count("predict") >= 4 and kinds.count("explore") >= 3
