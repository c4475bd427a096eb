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
_LEFTOVER = re.compile(r">[^<]*(\\[A-Za-z]+|&(?![#a-zA-Z0-9]+;))[^<]*<")


def _aligned_to_array(match: re.Match) -> str:
    # latex2mathml has no `aligned`; an array with alternating right/left columns is the same layout
    body = match.group(1)
    columns = 1 + max(row.count("&") for row in body.split(r"\\"))
    spec = "".join("r" if i % 2 == 0 else "l" for i in range(columns))
    return r"\begin{array}{" + spec + "}" + body + r"\end{array}"


def render_math(tex: str, *, display: bool) -> str:
    """One formula to MathML; raises MathError naming the formula when it cannot be converted."""
    tex = tex.strip()
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
    mathml = _FUNCTION.sub(r'\1<mspace width="0.1667em"></mspace>', mathml)
    mathml = _FENCE.sub(r'<mo\1 lspace="0em" rspace="0em">\2</mo>', mathml)
    # keep the source for screen readers' alternatives and copy-paste
    alt = html.escape(tex, quote=True)
    mathml = mathml.replace("<math ", f'<math alttext="{alt}" ', 1)
    if display:
        return f'<div class="math-display">{mathml}</div>\n'
    return mathml


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
