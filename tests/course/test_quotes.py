"""Numbers quoted from shipped experiment JSON: the right cell, or a start-up error naming the line."""

import json

import pytest

from straightline.course import content, quotes


@pytest.fixture()
def exp_dir(tmp_path):
    doc = {"title": "t", "caption": "c", "columns": ["data", "NFE", "quality"],
           "rows": [["moons", 5, 0.4272], ["moons", 100, 0.1508], ["digits", 5, 40.54]]}
    (tmp_path / "demo.json").write_text(json.dumps(doc))
    return tmp_path


def test_a_quote_is_the_one_matching_cell(exp_dir):
    text = "DDIM at five steps: {{demo | quality | data=moons; NFE=5}}, digits {{demo | quality | data=digits | .1f}}."
    assert quotes.substitute(text, exp_dir) == "DDIM at five steps: 0.427, digits 40.5."


@pytest.mark.parametrize("bad, message", [
    ("{{nothing | quality | NFE=5}}", "no experiment 'nothing'"),
    ("{{demo | speed | NFE=5}}", "has no column 'speed'"),
    ("{{demo | quality | NFE=5}}", "match 2 rows"),
    ("{{demo | quality | NFE=7}}", "match 0 rows"),
    ("{{demo | quality | size=7}}", "must be COLUMN=VALUE"),
])
def test_a_bad_quote_names_its_line_and_what_is_wrong(exp_dir, bad, message):
    with pytest.raises(quotes.QuoteError, match=message) as info:
        quotes.substitute(f"line one\nline two {bad}\n", exp_dir)
    assert info.value.line == 2


def test_the_course_loads_with_its_quotes_resolved():
    course = content.load_course()
    text = " ".join(str(e.html) for ch in course.chapters for e in ch.elements)
    assert "{{" not in text
