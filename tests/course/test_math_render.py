"""TeX to MathML details a learner sees: signs set as signs, primes at full size, aligned cells
marked for CSS alignment, long display formulas given a broken version aligned at the relation
signs, and long inline formulas cut where TeX would let the line wrap."""

from __future__ import annotations

import re

from straightline.course.markdown import render, render_math
from straightline.course.mathbreak import broken_display, inline_chunks

PREFIX_MINUS = '<mo form="prefix" lspace="0em" rspace="0em">&#x02212;</mo>'


def test_a_minus_after_a_relation_bracket_or_comma_is_a_sign() -> None:
    html = render_math(r"y = -x, \quad (-1,\ -2)", display=False)
    assert html.count(PREFIX_MINUS) == 3
    binary = render_math(r"a - b - (c) - d", display=False)
    assert PREFIX_MINUS not in binary and binary.count("<mo>&#x02212;</mo>") == 3


def test_primes_follow_their_symbol_at_full_size() -> None:
    html = render_math(r"f'(x) + \sigma_t'", display=False)
    assert "<msup>" not in html and "<msubsup>" not in html
    assert html.count('<mo lspace="0em" rspace="0em">&#x02032;</mo>') == 2
    assert "<msub><mi>&#x003C3;</mi><mi>t</mi></msub>" in html


def test_aligned_cells_carry_their_alignment_and_relation_spacing() -> None:
    html = render_math(r"\begin{aligned} a &= b \\ &\le c \end{aligned}", display=True)
    assert html.count('<mtd columnalign="right"><mrow>') == 1  # the empty cell stays empty
    assert html.count('<mtd columnalign="left"><mrow><mo lspace="0.2778em" rspace="0.2778em">') == 2


def test_a_long_display_formula_gets_a_broken_version_aligned_at_its_relations() -> None:
    tex = r"u_t(x) = \frac{a - x}{1 - t} = \frac{b}{c}, \qquad p(x_1 \mid x_t = x) = \frac{q}{r}"
    broken = broken_display(tex)
    rows = [row.strip() for row in broken.removeprefix("\\begin{aligned}").removesuffix("\\end{aligned}").split("\\\\")]
    assert rows == [
        "u_t(x) &= \\frac{a - x}{1 - t}",
        "&= \\frac{b}{c},",
        "& p(x_1 \\mid x_t = x)",  # a long single relation: its left side gets a row of its own
        "&\\quad = \\frac{q}{r}",
    ]  # the '=' inside p(x_1 | x_t = x) is not a break point
    html = render_math(tex, display=True)
    assert 'data-breakable' in html and 'class="math-wide"' in html and 'class="math-narrow"' in html
    assert broken_display("a = b") is None
    assert 'data-breakable' not in render_math("a = b", display=True)


def test_a_long_right_side_is_continued_at_a_plus() -> None:
    broken = broken_display(r"x(t + h) = x(t) + h\, \frac{dx}{dt}(t) + \frac{h^2}{2}\, \frac{d^2 x}{dt^2}(t) + \dots")
    rows = [row.strip() for row in broken.split("\\\\")]
    assert len(rows) == 3 and rows[1].startswith("&\\quad =") and rows[2].startswith("&\\quad +")


def test_items_separated_by_comma_thin_space_get_rows_of_their_own() -> None:
    broken = broken_display(r"L = \mathbb{E}\,\|v - u\|^2, \qquad t \sim \mathcal{U}(0,1),\; x_0 \sim \mathcal{N}(0, I)")
    assert "t &\\sim \\mathcal{U}(0,1)," in broken and "x_0 &\\sim \\mathcal{N}(0, I)" in broken


def test_inline_formulas_are_cut_after_top_level_relations() -> None:
    assert inline_chunks(r"\mathbb{E}[A \mid B = b] = \mathbb{E}[A] + c") == [r"\mathbb{E}[A \mid B = b] =", r"\mathbb{E}[A] + c"]
    html = render(r"See $1 \to 1 - 0.5 \cdot 1 = 0.5 \to 0.5 - 0.5 \cdot 0.5 = 0.25$ here.")
    assert html.count('<span class="math-piece"><math ') == 5
    assert render("Short: $a = b$.").count("<math ") == 1


def test_simulation_labels_write_math_symbols_not_tex() -> None:
    from pathlib import Path

    sims = Path(__file__).parents[2] / "src" / "straightline" / "web" / "static" / "sims"
    text = (sims / "mixture-oracle.js").read_text()
    strings = re.findall(r'"[^"\n]*"|`[^`]*`', text)
    for tex_like in ("u_t", "v_θ", "p_t"):
        assert not any(tex_like in s for s in strings), tex_like
    assert "uₜ(x)" in text and "v_{θ}(x, t)" in text and "pₜ" in text  # _{…}: label() draws a subscript
    core = (sims / "core.js").read_text()
    assert core.count(r"split(/_\{([^}]*)\}/)") == 2  # in canvas labels and in table headings


def test_a_backslash_at_the_end_of_a_line_is_a_space_not_a_printed_backslash() -> None:
    """Ch 0 wrote `$(0.75,\\` and `0.25)$` on two lines; the page showed "(0.75,\\0.25)"."""
    html = render("a quarter of the journey, $(0.75,\\\n0.25)$.")
    assert "<mi>\\" not in html and "<mtext>&#x000A0;</mtext><mn>0.25</mn>" in html
    rows = render_math("\\begin{aligned} a &= b \\\\\n &= c \\end{aligned}", display=True)
    assert rows.count("<mtr>") == 2  # a row break followed by a newline stays a row break
