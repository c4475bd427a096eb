"""Numbers quoted in chapter text straight from a shipped experiment (`experiments/KEY.json`).

Anywhere in a chapter (prose or an element's text field) write

    {{KEY | COLUMN | NAME=VALUE; NAME=VALUE}}            e.g. {{steps | quality | sampler=DDIM; NFE=5}}
    {{KEY | COLUMN | NAME=VALUE | FORMAT}}               FORMAT is a Python format spec, e.g. .2f

and the loader replaces it with that cell of the one row whose named cells equal the values
(numbers compare as numbers). Default format: three significant digits. A key, column or row that
does not exist, or conditions that match several rows, stop the app at start-up with file:line.
"""

from __future__ import annotations

import re
from pathlib import Path

from .experiments import DEFAULT_EXPERIMENTS_DIR, Experiment, load_experiment

__all__ = ["QuoteError", "quote", "substitute"]

_QUOTE = re.compile(r"\{\{\s*([a-z0-9-]+)\s*\|\s*([^|{}]+?)\s*\|\s*([^|{}]*?)\s*(?:\|\s*([^|{}]+?)\s*)?\}\}")


class QuoteError(ValueError):
    """A quote that cannot be resolved; `line` is 1-based within the text given to `substitute`."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


def _equal(cell: object, value: str) -> bool:
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        try:
            return float(value) == float(cell)
        except ValueError:
            return False
    return str(cell) == value


def _row(exp: Experiment, conditions: str) -> list:
    wanted = []
    for part in filter(None, (p.strip() for p in conditions.split(";"))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in exp.columns:
            raise ValueError(f"condition {part!r} must be COLUMN=VALUE with a column of {exp.key!r}: {exp.columns}")
        wanted.append((exp.columns.index(name.strip()), value.strip()))
    rows = [r for r in exp.rows if all(_equal(r[i], v) for i, v in wanted)]
    if len(rows) != 1:
        raise ValueError(f"conditions {conditions!r} match {len(rows)} rows of {exp.key!r}, need exactly one")
    return rows[0]


def quote(key: str, column: str, conditions: str, fmt: str | None = None, directory: Path | None = None) -> str:
    """One cell of a shipped experiment as text (ValueError naming what is wrong)."""
    exp = load_experiment(key, directory or DEFAULT_EXPERIMENTS_DIR)
    if exp is None:
        raise ValueError(f"no experiment {key!r} (no {key}.json in the experiments folder)")
    if column not in exp.columns:
        raise ValueError(f"experiment {key!r} has no column {column!r}; columns: {exp.columns}")
    cell = _row(exp, conditions)[exp.columns.index(column)]
    if isinstance(cell, str):
        return cell
    return format(cell, fmt or ".3g")


def substitute(text: str, directory: Path | None = None) -> str:
    """`text` with every {{...}} quote replaced; QuoteError(line, message) on the first bad one."""

    def one(match: re.Match) -> str:
        try:
            return quote(match.group(1), match.group(2), match.group(3), match.group(4), directory)
        except ValueError as exc:
            raise QuoteError(text.count("\n", 0, match.start()) + 1, f"quote {match.group(0)!r}: {exc}") from None

    return _QUOTE.sub(one, text)
