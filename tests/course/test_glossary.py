"""The glossary (course/glossary.py): validated against the course at load, like a chapter, and its
entries' first use in each chapter linked, outside math, headings, code and existing links."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from straightline.course.content import ContentError, Course, Section, load_course
from straightline.course.glossary import GLOSSARY_FILE, Glossary, link_first_uses, load_glossary

FIXTURE = Path(__file__).parents[1] / "web" / "fixtures" / "course"
SHIPPED = Path(__file__).parents[2] / "src" / "straightline" / "course" / "chapters" / GLOSSARY_FILE

ENTRY = """\
- key: {key}
  term: {term}
  kind: term
  aliases: [{aliases}]
  introduced: {{chapter: {chapter}, section: {section}}}
  definition: |
    What {term} means.
"""


def entry(key: str = "gate", term: str = "gate", aliases: str = "gate", chapter: str = "beta", section: str = "before-the-gate") -> str:
    return ENTRY.format(key=key, term=term, aliases=aliases, chapter=chapter, section=section)


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(FIXTURE)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / GLOSSARY_FILE
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_glossary_loads_with_its_section_titles(tmp_path: Path, course: Course) -> None:
    glossary = load_glossary(write(tmp_path, entry() + entry("ode", "ODE", "ODE, ordinary differential equation")), course)
    assert [e.key for e in glossary.entries] == ["gate", "ode"]
    assert glossary.entries[0].section_title == "Before the gate"
    assert glossary.entries[1].aliases == ("ODE", "ordinary differential equation")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (entry() + entry("x", "x", "x", section="no-such-section"), 8,
         "chapter 'beta' has no section 'no-such-section' (its sections: before-the-gate, after-the-gate, "),
        (entry(chapter="gamma"), 1, "no chapter 'gamma' (chapters: alpha, beta)"),
        (entry() + entry(aliases="other"), 8, "glossary key 'gate' is also used at line 1"),
        (entry() + entry("g2", aliases="Gate"), 8, "alias 'Gate' of 'g2' is also an alias of 'gate'"),
        (entry().replace("kind: term", "kind: word"), 1, "kind 'word' must be one of symbol, term"),
        (entry().replace("  definition: |\n    What gate means.\n", ""), 1, "lacks ['definition']"),
        (entry().replace("term: gate", "term: $\\frac{$"), 1, "term"),
        ("key: gate\n", 1, "must be a YAML list"),
    ],
)
def test_a_glossary_entry_that_does_not_fit_the_course_is_refused_with_file_and_line(
    tmp_path: Path, course: Course, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ContentError) as err:
        load_glossary(path, course)
    assert err.value.line == line and message in err.value.message
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_a_course_without_a_glossary_file_has_an_empty_one(tmp_path: Path, course: Course) -> None:
    assert load_glossary(tmp_path / GLOSSARY_FILE, course).entries == []


def test_the_app_refuses_to_start_on_a_glossary_pointing_at_a_missing_section(tmp_path: Path) -> None:
    from straightline.web.app import create_app
    from straightline.web.settings import Settings

    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    write(content, entry(section="after-the-gat"))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", secret_key="k" * 40, data_dir=tmp_path, content_dir=content)
    with pytest.raises(ContentError, match=r"glossary.yaml:1: .*has no section 'after-the-gat'"):
        create_app(settings)


# --- the shipped glossary -----------------------------------------------------------------------

REQUIRED_KEYS = {
    "x0", "x1", "xt", "t", "v-theta", "ut", "pt", "psi-t", "coupling", "cfm", "marginal-velocity",
    "conditional-velocity", "w2", "nfe", "euler", "heun", "rk4", "reflow", "distillation", "flow-map",
    "average-velocity", "score", "eps-prediction", "x1-hat", "snr", "time-sampler", "shift", "cfg", "mmdit", "so3",
}


def test_the_shipped_glossary_covers_the_course_notation_and_every_entry_points_at_a_real_section() -> None:
    course = load_course()
    glossary = load_glossary(SHIPPED, course)  # raises on any entry that points nowhere
    keys = {e.key for e in glossary.entries}
    assert REQUIRED_KEYS <= keys, sorted(REQUIRED_KEYS - keys)
    assert len(glossary.entries) >= 45
    assert {e.kind for e in glossary.entries} == {"symbol", "term"}


# --- first-use links ----------------------------------------------------------------------------

def _glossary(tmp_path: Path, course: Course) -> Glossary:
    text = entry("cfm", "conditional flow matching", "conditional flow matching, CFM") + entry(
        "fm", "flow matching", "flow matching"
    ) + entry("coupling", "coupling", "coupling")
    return load_glossary(write(tmp_path, text), course)


def links(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<a class="gloss" href="/glossary#g-([a-z0-9-]+)"[^>]*>([^<]*)</a>', html)


def test_only_the_first_use_in_a_chapter_is_linked_across_its_sections(tmp_path: Path, course: Course) -> None:
    glossary = _glossary(tmp_path, course)
    blocks = ["<p>Flow matching and a coupling.</p>", "<p>More flow matching, couplings, CFM.</p>", "<p>CFM again.</p>"]
    out = link_first_uses(blocks, glossary)
    assert links(out[0]) == [("fm", "Flow matching"), ("coupling", "coupling")]
    assert links(out[1]) == [("cfm", "CFM")]  # flow matching and coupling were linked already
    assert links(out[2]) == []
    # a new chapter starts afresh
    assert links(link_first_uses(["<p>CFM.</p>"], glossary)[0]) == [("cfm", "CFM")]


def test_the_longest_alias_wins_and_acronyms_match_their_case_only(tmp_path: Path, course: Course) -> None:
    glossary = _glossary(tmp_path, course)
    [out] = link_first_uses(["<p>Conditional flow matching is not cfm; plural: CFMs.</p>"], glossary)
    assert links(out) == [("cfm", "Conditional flow matching")]
    [out] = link_first_uses(["<p>cfm is not an alias; couplings is.</p>"], glossary)
    assert links(out) == [("coupling", "couplings")]


@pytest.mark.parametrize(
    "html",
    [
        '<h2 id="coupling">A coupling</h2>',
        '<p><code>coupling</code></p>',
        '<pre class="code"><code>coupling = ot(x)</code></pre>',
        '<p><a href="/x">the coupling</a></p>',
        '<p><span class="math inline"><math alttext="coupling"><mi>coupling</mi></math></span></p>',
        '<p>uncoupling and coupling-free</p>',
    ],
)
def test_no_link_inside_headings_code_links_math_or_other_words(tmp_path: Path, course: Course, html: str) -> None:
    glossary = _glossary(tmp_path, course)
    [out] = link_first_uses([html], glossary)
    assert out == html


def test_a_use_inside_a_heading_does_not_count_as_the_first(tmp_path: Path, course: Course) -> None:
    glossary = _glossary(tmp_path, course)
    out = link_first_uses(['<h2 id="c">Coupling</h2><p>Then the coupling <em>coupling</em>.</p>'], glossary)[0]
    assert links(out) == [("coupling", "coupling")]
    assert out.startswith('<h2 id="c">Coupling</h2><p>Then the <a class="gloss"')


def test_the_real_chapters_link_each_entry_at_most_once_and_never_in_math(real_sections: dict[str, list[str]]) -> None:
    glossary = load_glossary(SHIPPED, load_course())
    total = 0
    for slug, blocks in real_sections.items():
        html = "".join(link_first_uses(blocks, glossary))
        keys = [k for k, _ in links(html)]
        assert len(keys) == len(set(keys)), f"{slug}: an entry linked twice: {keys}"
        assert not re.search(r"<math\b(?:(?!</math>).)*class=\"gloss\"", html, re.S), slug
        total += len(keys)
    assert total >= 60  # the course uses its terms


@pytest.fixture(scope="module")
def real_sections() -> dict[str, list[str]]:
    return {c.slug: [b.html for b in c.blocks if isinstance(b, Section)] for c in load_course().chapters}
