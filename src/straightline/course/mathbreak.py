"""Where a long formula may be broken across lines, found in its TeX.

MathML has no line breaking that browsers implement, so the renderer makes the breaks itself:

- `broken_display(tex)`: a display formula rewritten as an `aligned` block with one relation per
  row (aligned at the relation sign), one item per row where items are separated by `\\qquad` or
  `\\quad`, and very long rows continued at a top-level `+` or `-`; None when it has nothing to
  break at. The page shows it instead of the one-line formula when that one does not fit.
- `inline_chunks(tex)`: an inline formula cut after each top-level relation and spacing
  separator, so the text can wrap between the pieces, as TeX wraps inline math.

"Top level" means outside braces, brackets, parentheses, `\\left ... \\right` and environments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["broken_display", "inline_chunks", "visible_symbols"]

_RELATION_COMMANDS = {
    "le", "leq", "ge", "geq", "approx", "Longleftrightarrow", "Leftrightarrow", "iff", "equiv", "propto",
    "to", "mapsto", "sim", "ne", "neq",
}
_SEPARATORS = {"qquad", "quad"}
_OPEN = {"left", "begin", "langle", "lVert", "lvert", "{"}
_CLOSE = {"right", "end", "rangle", "rVert", "rvert", "}"}
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
#: a row longer than this many visible symbols is continued at a top-level + or - (about what a
#: 375 px phone column holds)
LONG_ROW = 18
#: a left-hand side longer than this gets a row of its own, the relations indented below it
LONG_LEFT = 8


@dataclass(frozen=True)
class _Mark:
    start: int
    end: int
    kind: str  # "relation", "separator", "binary"


def _marks(tex: str) -> list[_Mark]:
    """Top-level relations, spacing separators and binary +/- of `tex`, in order."""
    marks: list[_Mark] = []
    depth, i, previous, in_norm = 0, 0, "start", False
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            m = _COMMAND.match(tex, i)
            name, end = m.group(1), m.end()
            if name == "|":  # \| opens a norm, the next one closes it
                depth, in_norm = (max(depth - 1, 0), False) if in_norm else (depth + 1, True)
            elif name in _OPEN:
                depth += 1
            elif name in _CLOSE:
                depth = max(depth - 1, 0)
            elif depth == 0 and name in _RELATION_COMMANDS:
                marks.append(_Mark(i, end, "relation"))
            elif depth == 0 and (name in _SEPARATORS or (name == ";" and tex[:i].rstrip().endswith(","))):
                marks.append(_Mark(i, end, "separator"))  # \quad, \qquad, and ",\;" between items
            if name in _RELATION_COMMANDS or name in _SEPARATORS:
                previous = "operator"
            elif name not in (",", ";", ":", "!", " "):  # thin spaces leave the left operand as it was
                previous = "operand"
            i = end
            continue
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth = max(depth - 1, 0)
        elif depth == 0 and c in "=<>":
            marks.append(_Mark(i, i + 1, "relation"))
        elif depth == 0 and c in "+-" and previous == "operand":
            marks.append(_Mark(i, i + 1, "binary"))
        if not c.isspace():
            previous = "operator" if c in "=<>+-,(" else "operand"
        i += 1
    return marks


def visible_symbols(tex: str) -> int:
    """A rough count of the symbols a formula shows (commands count as one)."""
    stripped = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg|mathrm|mathbb|mathcal|operatorname|text|[,;:!]|q?quad)\b", "", tex)
    return len(re.findall(r"\\[A-Za-z]+|[A-Za-z0-9]|[^\sA-Za-z0-9{}_^\\]", stripped))


def _pieces(tex: str, kinds: tuple[str, ...]) -> list[str]:
    """`tex` cut before each top-level mark of the given kinds (the mark starts the next piece)."""
    cuts = [m.start for m in _marks(tex) if m.kind in kinds]
    bounds = [0, *cuts, len(tex)]
    return [tex[a:b].strip() for a, b in zip(bounds, bounds[1:]) if tex[a:b].strip()]


def _rows(lhs: str, parts: list[str]) -> list[str]:
    """Aligned rows "lhs &= B", "&= C" for parts that each start with a relation; a long lhs gets
    a row of its own and the relations are indented below it."""
    own_row = visible_symbols(lhs) > LONG_LEFT
    rows = [f" & {lhs}"] if own_row else []
    indent = "\\quad " if own_row else ""
    for k, part in enumerate(parts):
        lines = _continued(part)
        rows.append(f"{lhs if k == 0 and not own_row else ''} &{indent}{lines[0]}")
        rows += [f"&\\quad {indent}{line}" for line in lines[1:]]
    return rows


def _rows_of_item(item: str) -> list[str]:
    """One item ("A = B = C") as aligned rows: "A &= B", "&= C"; long rows continued at +/-."""
    parts = _pieces(item, ("relation",))
    if len(parts) == 1:
        return [" & " + line for line in _continued(parts[0])]
    if len(parts) == 2 and visible_symbols(item) > LONG_ROW:
        # one long relation: the left side on its own row, the rest indented below it
        return [f" & {parts[0]}", *[f"&\\quad {line}" for line in _continued(parts[1])]]
    return _rows(parts[0], parts[1:])


def _continued(part: str) -> list[str]:
    if visible_symbols(part) <= LONG_ROW:
        return [part]
    lines: list[str] = []
    for piece in _pieces(part, ("binary",)):
        if lines and visible_symbols(lines[-1]) + visible_symbols(piece) <= LONG_ROW:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return lines


def _items(tex: str) -> list[str]:
    """`tex` split at top-level \\quad / \\qquad (the separators are dropped)."""
    marks = [m for m in _marks(tex) if m.kind == "separator"]
    bounds = [0]
    for m in marks:
        bounds += [m.start, m.end]
    bounds.append(len(tex))
    return [tex[a:b].strip() for a, b in zip(bounds[::2], bounds[1::2]) if tex[a:b].strip()]


_ALIGNED = re.compile(r"^\s*\\begin\{aligned\}(.*)\\end\{aligned\}\s*$", re.S)


def broken_display(tex: str) -> str | None:
    """The display formula `tex` as a multi-row aligned block, or None when nothing would change."""
    m = _ALIGNED.match(tex)
    if m:
        given = [row for row in re.split(r"\\\\", m.group(1)) if row.strip()]
        rows = []
        for row in given:
            left, _, right = row.partition("&")
            parts = _pieces(right, ("relation",))
            starts_with_relation = bool(parts) and any(mk.start == 0 for mk in _marks(parts[0]) if mk.kind == "relation")
            rows += _rows(left.strip(), parts) if starts_with_relation else [row.strip()]
    else:
        given = [tex]
        rows = [r for item in _items(tex) for r in _rows_of_item(item)]
    if len(rows) <= len(given):
        return None
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def inline_chunks(tex: str) -> list[str]:
    """`tex` cut after each top-level relation and separator, and, in a still long piece, after
    its top-level binary + and - (TeX's break points in inline math)."""
    chunks = []
    for chunk in _cut_after(tex, ("relation", "separator")):
        chunks += _cut_after(chunk, ("binary",)) if visible_symbols(chunk) > LONG_INLINE else [chunk]
    return chunks


#: an inline piece with more visible symbols than this may also wrap after a + or -
LONG_INLINE = 16


def _cut_after(tex: str, kinds: tuple[str, ...]) -> list[str]:
    cuts = [mk.end for mk in _marks(tex) if mk.kind in kinds and tex[mk.end :].strip()]
    bounds = [0, *cuts, len(tex)]
    return [c for c in (tex[a:b].strip() for a, b in zip(bounds, bounds[1:])) if c]
