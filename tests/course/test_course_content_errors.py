"""A malformed chapter file stops the app from starting, with file, line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from straightline.course.content import ContentError, load_course
from straightline.web.app import create_app
from straightline.web.settings import Settings

from content_copies import edited_copy

FIXTURES = Path(__file__).parents[1] / "web" / "fixtures" / "course"


def _broken(tmp_path: Path, old: str, new: str, file: str = "00-alpha.md") -> tuple[Path, Path, str]:
    return edited_copy(FIXTURES, tmp_path, file, old, new)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


CASES = [
    # (old, new, line needle, message fragment)
    ("```{check} a-check", "```{quiz} a-check", "```{quiz} a-check", "unknown element type 'quiz'"),
    ("  - |\n    Hint three: integrate a constant over $[0, 1]$.\n", "", "```{derivation} a-derivation", "must have exactly 3 hints, got 2"),
    ("    correct: true\n    explanation: |\n      Differentiate", "    explanation: |\n      Differentiate", "```{check} a-check", "must have exactly one correct option, has 0"),
    ("The path $x_t = (1 - t) x_0 + t x_1$", "The path $x_t = \\frac{1}{$", "The path", "cannot render formula"),
    ("minutes: 5", "minutes: 0", "minutes: 0", "minutes 0 must be an integer in 1..240"),
    ("slug: alpha", "slug: Alpha!", "slug:", "slug 'Alpha!' must match [a-z0-9-]+"),
    ("sim: particles-flow", "sim: particles-flow\nspeed: fast", "```{simulation} a-sim", "has unknown field(s) ['speed']"),
    ("question: |\n  What is the velocity", "question: [unclosed\n  What is the velocity", "question: [unclosed", "invalid YAML"),
    ("## Straight lines", "# Straight lines", "# Straight lines", "use ## for sections"),
    ("object: straightline.course.content.load_course", "object: straightline.course.content.nope", "```{listing} a-listing", "does not exist in the toolkit"),
]


@pytest.mark.parametrize(("old", "new", "needle", "message"), CASES, ids=[c[3][:30] for c in CASES])
def test_malformed_chapter_fails_with_file_line_and_message(tmp_path: Path, old: str, new: str, needle: str, message: str) -> None:
    content, path, text = _broken(tmp_path, old, new)
    with pytest.raises(ContentError) as info:
        load_course(content)
    err = info.value
    assert err.path == path
    if needle.startswith(("slug:", "minutes:")):
        assert err.line == 2  # front matter errors point at the front matter
    elif "YAML" in message:
        assert err.line in (_line_of(text, needle), _line_of(text, needle) + 1), str(err)  # where YAML noticed it
    else:
        assert err.line == _line_of(text, needle), str(err)
    assert message in err.message
    assert str(err).startswith(f"{path}:{err.line}: ")


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    content, path, text = _broken(tmp_path, "```{checkpoint} b-gate", "```{checkpoint} a-check", file="01-beta.md")
    with pytest.raises(ContentError, match=r"01-beta\.md:\d+: element id 'a-check' is also used in 00-alpha\.md"):
        load_course(content)


def test_create_app_refuses_to_start_on_malformed_content(tmp_path: Path) -> None:
    content, path, text = _broken(tmp_path, "```{check} a-check", "```{check} A Check")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", secret_key="k" * 20, data_dir=tmp_path, content_dir=content)
    with pytest.raises(ContentError) as info:
        create_app(settings)
    assert info.value.path == path and info.value.line == _line_of(text, "{check} A Check")
    assert not (tmp_path / "p.db").exists()  # nothing started, nothing created


def test_the_real_course_loads(tmp_path: Path) -> None:
    course = load_course()
    assert [c.number for c in course.chapters] == list(range(len(course.chapters)))
    assert course.elements
