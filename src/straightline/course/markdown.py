"""Markdown + LaTeX to HTML + MathML, rendered once on the server.

`render(text)` turns CommonMark with GFM tables, `$...$` and `$$...$$` math into HTML. A formula
that latex2mathml cannot convert raises `MathError`, which the content loader turns into a
`file:line` start-up error.
"""

from __future__ import annotations

import html
import re
from typing import Any

import latex2mathml.converter
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

from . import mathbreak

__all__ = ["MathError", "highlight_code", "make_parser", "render", "render_math", "slugify"]


class MathError(ValueError):
    """A formula that could not be rendered to MathML; `tex` is the formula."""

    def __init__(self, message: str, tex: str = ""):
        super().__init__(message)
        self.tex = tex


# Fences inside a row get MathML's default "infix" operator spacing (a wide gap, as in "f (x)");
# TeX puts no space around them.
_FENCE = re.compile(
    r"<mo((?:(?!lspace)[^>])*)>(&#x00028;|&#x00029;|&#x0005B;|&#x0005D;|&#x0007B;|&#x0007D;|&#x0007C;|&#x02016;|&#x027E8;|&#x027E9;|[()\[\]{}|])</mo>"
)
# TeX sets a thin space after an operator name (\log p) unless a bracket follows (\log(p));
# latex2mathml emits the bare name.
_FUNCTION = re.compile(
    r"(<mi>(?:log|ln|exp|sin|cos|tan|det|dim|tr|arg|lim|sup|inf|min|max)</mi>)"
    r"(?!<mo[^>]*>(?:&#x00028;|&#x0005B;|[(\[])</mo>)(?!<mrow><mo[^>]*form=\"prefix\")(?=<)"
)
_ALIGNED = re.compile(r"\\begin\{aligned\}(.*?)\\end\{aligned\}", re.S)
# Text left inside a MathML token that still looks like TeX: an unknown command or a stray '&'.
_LEFTOVER = re.compile(r">[^<]*(\\[A-Za-z]+|\\\s|\\$|&(?![#a-zA-Z0-9]+;))[^<]*<", re.M)
# TeX's control space written as a backslash at the end of a line (`(0.75,\` then `0.25)` on the
# next line): latex2mathml would print the backslash, so it becomes `\ ` (not the `\\` row break).
_CONTROL_SPACE = re.compile(r"(?<!\\)((?:\\\\)*)\\\n")


def _aligned_to_array(match: re.Match) -> str:
    # latex2mathml has no `aligned`; an array with alternating right/left columns is the same layout
    body = match.group(1)
    columns = 1 + max(row.count("&") for row in body.split(r"\\"))
    spec = "".join("r" if i % 2 == 0 else "l" for i in range(columns))
    return r"\begin{array}{" + spec + "}" + body + r"\end{array}"


_CELL = re.compile(r'<mtd columnalign="(right|left)">(.*?)</mtd>', re.S)
# A relation that opens a left-aligned cell of an aligned block ("&= ..."): TeX's `aligned` puts an
# empty group before it, so it keeps its spacing on both sides.
_RELATION = "&#x0003D;|&#x02264;|&#x02265;|&#x0003C;|&#x0003E;|&#x02248;|&#x021D4;|&#x02261;|&#x0221D;|&#x0223C;"
_OPENING_RELATION = re.compile(r'(<mtd columnalign="left"><mrow>)<mo>(' + _RELATION + ")</mo>")


def _cells(match: re.Match) -> str:
    # each cell's content in one mrow, so the right-aligned ones can be set right to left as a
    # whole (CSS `direction`), which is how they are pushed to the right edge of their column
    return f'<mtd columnalign="{match.group(1)}"><mrow>{match.group(2)}</mrow></mtd>'


def _aligned_layout(mathml: str) -> str:
    mathml = _CELL.sub(_cells, mathml)
    return _OPENING_RELATION.sub(r'\1<mo lspace="0.2778em" rspace="0.2778em">\2</mo>', mathml)


# A minus or plus sign with no operand on its left (after an operator, an opening bracket, a comma,
# or at the start of a row or cell) is a sign, not a binary operation: TeX sets it with no space.
_CLOSING = "&#x00029;|&#x0005D;|&#x0007D;|&#x027E9;|&#x02016;|&#x0007C;|[)\\]}|]"
_SPACES = r"(?:<mspace[^>]*/>|<mspace[^>]*></mspace>|<mtext>[^<]*</mtext>)*"
_UNARY = re.compile(
    r"((?:<mo[^>]*>(?!" + _CLOSING + r")[^<]*</mo>|<mrow>|<mtd[^>]*>)" + _SPACES + r")<mo>(&#x02212;|&#x0002B;|&#x000B1;)</mo>"
)
# A prime set as a superscript of a single symbol: the prime glyph is already raised, and as a
# superscript it shrinks to a tick, so it follows its symbol (after any subscript) at full size.
_PRIME = "&#x02032;|&#x02033;|&#x02034;"
_PRIME_SUP = re.compile(r"<msup>(<mi>[^<]*</mi>)<mi>(" + _PRIME + r")</mi></msup>")
_PRIME_SUBSUP = re.compile(r"<msubsup>(<mi>[^<]*</mi>)(<m[in]>[^<]*</m[in]>)<mi>(" + _PRIME + r")</mi></msubsup>")
_PRIME_MO = '<mo lspace="0em" rspace="0em">'


def _signs_and_primes(mathml: str) -> str:
    previous = None
    while previous != mathml:  # "= - -1": each pass settles one sign of a run
        previous, mathml = mathml, _UNARY.sub(r'\1<mo form="prefix" lspace="0em" rspace="0em">\2</mo>', mathml)
    mathml = _PRIME_SUP.sub(r"\1" + _PRIME_MO + r"\2</mo>", mathml)
    return _PRIME_SUBSUP.sub(r"<msub>\1\2</msub>" + _PRIME_MO + r"\3</mo>", mathml)


def render_math(tex: str, *, display: bool) -> str:
    """One formula to HTML with MathML; raises MathError naming the formula when it cannot be
    converted. A long display formula also gets a version broken across rows (shown when the
    one-line version does not fit), a long inline one is cut where the text may wrap."""
    tex = tex.strip()
    if display:
        wide = _mathml(tex, display=True)
        broken = mathbreak.broken_display(tex)
        try:
            narrow = _mathml(broken, display=True, alttext=tex) if broken is not None else None
        except MathError:  # a break that does not render: show the formula on one line
            narrow = None
        if narrow is None:
            return f'<div class="math-display">{wide}</div>\n'

        return (
            '<div class="math-display" data-breakable>'
            + wide.replace("<math ", '<math class="math-wide" ', 1)
            + narrow.replace("<math ", '<math class="math-narrow" ', 1)
            + "</div>\n"
        )
    chunks = mathbreak.inline_chunks(tex) if mathbreak.visible_symbols(tex) > INLINE_BREAK_AFTER else [tex]
    if len(chunks) == 1:
        return _mathml(tex, display=False)
    try:
        return "".join(f'<span class="math-piece">{_mathml(chunk, display=False, alttext=chunk)}</span>' for chunk in chunks)
    except MathError:  # a piece that does not stand on its own: keep the formula whole
        return _mathml(tex, display=False)


#: inline formulas with more visible symbols than this may wrap after their relations
INLINE_BREAK_AFTER = 14


def _mathml(tex: str, *, display: bool, alttext: str | None = None) -> str:
    """One formula to a <math> element; raises MathError naming the formula."""
    tex = _CONTROL_SPACE.sub(r"\1\\ ", tex)
    try:
        mathml = latex2mathml.converter.convert(
            _ALIGNED.sub(_aligned_to_array, tex), display="block" if display else "inline"
        )
    except Exception as exc:  # latex2mathml raises a zoo of exception types
        raise MathError(f"cannot render formula {tex!r}: {exc}", tex) from None
    if "<merror" in mathml:
        raise MathError(f"formula {tex!r} renders as an error", tex)
    leftover = _LEFTOVER.search(mathml)
    if leftover:
        raise MathError(f"formula {tex!r} leaves {leftover.group(1)!r} unrendered (unsupported command?)", tex)
    mathml = mathml.replace("<mi>&#x0007E;</mi>", "<mo>&#x0223C;</mo>")  # latex2mathml: \sim as an identifier
    mathml = _signs_and_primes(_aligned_layout(mathml))
    mathml = _FUNCTION.sub(r'\1<mspace width="0.1667em"></mspace>', mathml)
    mathml = _FENCE.sub(r'<mo\1 lspace="0em" rspace="0em">\2</mo>', mathml)
    # keep the source for screen readers' alternatives and copy-paste
    alt = html.escape(alttext if alttext is not None else tex, quote=True)
    return mathml.replace("<math ", f'<math alttext="{alt}" ', 1)


def _math_renderer(content: str, options: dict[str, Any]) -> str:
    return render_math(content, display=bool(options.get("display_mode")))


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "section"


def highlight_code(code: str, lang: str = "python") -> str:
    """Source code to HTML spans with Pygments token classes (no <pre> wrapper); escaped text for
    languages Pygments does not know."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(lang or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return html.escape(code)
    return highlight(code, lexer, HtmlFormatter(nowrap=True))


def _fence_highlight(code: str, lang: str, _attrs: str) -> str:
    if not lang or lang.startswith("{"):
        return ""  # markdown-it escapes it itself
    language = html.escape(lang.split()[0], quote=True)
    return f'<pre class="code" data-lang="{language}"><code class="language-{language}">{highlight_code(code, lang.split()[0])}</code></pre>\n'


def make_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False, "highlight": _fence_highlight}).enable("table")
    dollarmath_plugin(md, allow_space=True, allow_digits=True, double_inline=True, renderer=_math_renderer)
    anchors_plugin(md, min_level=2, max_level=3, slug_func=slugify)
    return md


_PARSER = make_parser()


def render(text: str) -> str:
    """Markdown with math to HTML."""
    return _PARSER.render(text)
