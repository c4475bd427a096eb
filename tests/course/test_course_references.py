"""Recaps, sources and citations: a chapter without them, or citing a key it does not list, stops
the app with file:line; good ones render to links and entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from straightline.course import content
from straightline.course.content import ContentError, load_course
from straightline.course.references import Source, labels, source_label

from content_copies import edited_copy

FIXTURES = Path(__file__).parents[1] / "web" / "fixtures" / "course"


def _course(tmp_path: Path, old: str = "", new: str = "", file: str = "00-alpha.md") -> tuple[Path, Path, str]:
    return edited_copy(FIXTURES, tmp_path, file, old, new)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _block(text: str, opening: str) -> str:
    """The fenced block that starts with `opening`, fences included."""
    start = text.index(opening)
    end = text.index("```\n", start + len(opening)) + 4
    return text[start:end]


def _error(directory: Path) -> ContentError:
    with pytest.raises(ContentError) as info:
        load_course(directory)
    return info.value


@pytest.fixture
def required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "REQUIRE_RECAP_AND_SOURCES", True)


@pytest.mark.parametrize("kind", ["sources", "recap"])
def test_a_chapter_without_sources_or_recap_is_refused_naming_the_file(tmp_path: Path, required: None, kind: str) -> None:
    text = (FIXTURES / "01-beta.md").read_text()
    directory, path, _ = _course(tmp_path, _block(text, f"```{{{kind}}} b-{kind}"), "", file="01-beta.md")
    err = _error(directory)
    assert err.path == path
    assert f"the chapter has no {{{kind}}} block" in err.message
    assert err.line == len(path.read_text().splitlines())  # the end of the file, where it belongs


def test_an_unknown_cite_key_is_refused_at_its_line(tmp_path: Path) -> None:
    directory, path, text = _course(tmp_path, "[@lipman2023].", "[@lipman2022].")
    err = _error(directory)
    assert (err.path, err.line) == (path, _line_of(text, "[@lipman2022]"))
    assert "unknown source '@lipman2022'" in err.message and "lipman2023, liu2023" in err.message


def test_a_cite_key_inside_an_element_is_checked_too(tmp_path: Path) -> None:
    directory, path, text = _course(tmp_path, "velocity [@lipman2023; @liu2023]", "velocity [@lipman2023; @song2021]")
    err = _error(directory)
    assert (err.path, err.line) == (path, _line_of(text, "@song2021"))
    assert "'@song2021'" in err.message


def test_citing_in_a_chapter_without_sources(tmp_path: Path) -> None:
    text = (FIXTURES / "01-beta.md").read_text()
    old = _block(text, "```{sources} b-sources")
    directory, path, text = _course(tmp_path, old, "Cited [@chen2018].\n", file="01-beta.md")
    err = _error(directory)
    assert err.line == _line_of(text, "[@chen2018]") and "the chapter has no sources block" in err.message


BAD_SOURCES = [
    ("    venue: ICLR\n    year: 2023\n    arxiv: \"2210", "    year: 2023\n    arxiv: \"2210", "lacks ['venue']"),
    ('arxiv: "2210.02747"', "arxiv: 2210.02747", "must be quoted text"),
    ('arxiv: "2210.02747"', 'arxiv: "2210-02747"', "is not an arXiv id"),
    ("    year: 2023\n    arxiv: \"2210", "    year: last\n    arxiv: \"2210", "year 'last' must be a four-digit year"),
    ("  - key: liu2023", "  - key: lipman2023", "source key 'lipman2023' is used twice"),
    ("  - key: liu2023", "  - key: Liu 2023", "must match [a-z0-9-]+"),
    ('arxiv: "2209.03003"', 'arxiv: "2209.03003"\n    doi: 10.1/x', "unknown field(s) ['doi']"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD_SOURCES, ids=[c[2][:24] for c in BAD_SOURCES])
def test_a_malformed_source_is_refused_at_the_sources_block(tmp_path: Path, old: str, new: str, message: str) -> None:
    directory, path, text = _course(tmp_path, old, new)
    err = _error(directory)
    assert err.path == path and err.line == _line_of(text, "```{sources} a-sources")
    assert message in err.message, err.message


@pytest.mark.parametrize("count", [2, 6])
def test_a_recap_lists_three_to_five_abilities(tmp_path: Path, count: int) -> None:
    text = (FIXTURES / "00-alpha.md").read_text()
    old = _block(text, "```{recap} a-recap")
    abilities = "".join(f"  - |\n    Ability {i}.\n" for i in range(count))
    new = f"```{{recap}} a-recap\nabilities:\n{abilities}summary: |\n  A recap.\n```\n"
    directory, path, text = _course(tmp_path, old, new)
    err = _error(directory)
    assert err.line == _line_of(text, "```{recap} a-recap")
    assert f"must list 3 to 5 abilities, got {count}" in err.message


def test_the_recap_and_sources_close_the_chapter(tmp_path: Path) -> None:
    text = (FIXTURES / "00-alpha.md").read_text()
    recap = _block(text, "```{recap} a-recap")
    directory, path, text = _course(tmp_path, recap, "")
    path.write_text(text.replace("```{simulation} a-sim", recap + "\n```{simulation} a-sim"))
    err = _error(directory)
    assert "only the sources block may follow it" in err.message and err.line == _line_of(path.read_text(), "{recap} a-recap")
    path.write_text((FIXTURES / "00-alpha.md").read_text() + "\nA paragraph after the sources.\n")
    assert "must be the chapter's last block" in _error(directory).message


def test_citations_link_to_their_entries_and_the_entries_to_arxiv() -> None:
    course = load_course(FIXTURES)
    prose = course.chapters[0].blocks[0].html
    assert '(<a href="#src-lipman2023">Lipman et al., 2023</a>)' in prose
    summary = course.elements["a-recap"].html["summary"]
    assert '<a href="#src-lipman2023">Lipman et al., 2023</a>; <a href="#src-liu2023">Liu et al., 2023</a>' in summary
    entry = course.elements["a-sources"].html["sources"][0]
    assert entry["link"] == "https://arxiv.org/abs/2210.02747" and entry["venue"] == "ICLR" and entry["year"] == 2023
    assert '(<a href="#src-liu2023">2023</a>)' in course.elements["a-check"].html["question"]  # [-@liu2023]
    assert [e[1:] for e in course.chapters[0].toc[-2:]] == [("a-recap", "Recap"), ("a-sources", "Sources")]


def test_author_year_labels_and_their_collisions() -> None:
    def source(key: str, authors: str, year: int) -> Source:
        return Source(key, authors, "T", "V", year)

    assert source_label(source("ho", "Jonathan Ho, Tim Salimans", 2022)) == "Ho and Salimans, 2022"
    assert source_label(source("ho", "Jonathan Ho", 2022)) == "Ho, 2022"
    both = [source("a", "Jiaming Song, Chenlin Meng, Stefano Ermon", 2021), source("b", "Yang Song, Jascha Sohl-Dickstein, Diederik P. Kingma", 2021)]
    assert labels(both) == {"a": "Song et al., 2021a", "b": "Song et al., 2021b"}
