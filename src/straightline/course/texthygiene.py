"""Text that both progress stores can hold, and JSON that parses the same everywhere.

PostgreSQL's JSONB refuses U+0000 and lone surrogates (U+D800..U+DFFF); SQLite stores them, and a
lone surrogate then breaks every page that shows it (it cannot be encoded as UTF-8). So the web
layer refuses such text from learners (`text_problem`, `tree_problem`, `loads_strict`), and the
store replaces it in whatever else it writes or reads (`scrub`: a grader's captured output, rows
stored before this check existed) with U+FFFD, the replacement character.

`loads_strict` parses JSON bytes that must be UTF-8, without NaN or Infinity (the export must stay
valid JSON), with numbers that fit a float, nested at most `max_depth` levels, and with no text
that `text_problem` refuses; a `JsonProblem` names where (`elements[2].state.answer`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["JsonProblem", "MAX_DEPTH", "REPLACEMENT", "loads_strict", "scrub", "text_problem", "tree_problem"]

MAX_DEPTH = 32
REPLACEMENT = "\ufffd"
_BAD = re.compile("[\x00\ud800-\udfff]")


class JsonProblem(ValueError):
    """JSON that is refused: `where` is its path ('' for the whole document), `message` says why."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where, self.message = where, message


def text_problem(value: str) -> str | None:
    """None when `value` can be stored and shown; else what is wrong with it."""
    found = _BAD.search(value)
    if found is None:
        return None
    char = found.group()
    what = "the character U+0000 (NUL)" if char == "\x00" else f"a lone surrogate U+{ord(char):04X} (not a character)"
    return f"contains {what} at position {found.start()}; text must be valid Unicode without NUL"


def _child(where: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else str(key)


def tree_problem(value: Any, where: str = "", max_depth: int = MAX_DEPTH) -> JsonProblem | None:
    """The first refused text, non-finite number or too deep nesting in a JSON value; None if none."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, at, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return JsonProblem(at, problem)
        elif isinstance(item, float) and not math.isfinite(item):
            return JsonProblem(at, f"must be a finite number, got {item}")
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return JsonProblem(at, f"is nested more than {max_depth} levels deep")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in reversed(list(pairs)):
                if isinstance(key, str) and (problem := text_problem(key)):
                    return JsonProblem(at, f"has a key that {problem}")
                stack.append((child, _child(at, key), depth + 1))
    return None


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:30]} does not fit a 64-bit float")
    return number


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number; numbers must be finite")


def loads_strict(raw: bytes | str, where: str = "", max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON as described in the module docstring; raises JsonProblem."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonProblem(where, f"is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(raw, parse_float=_finite, parse_constant=_constant)
    except RecursionError:
        raise JsonProblem(where, f"is nested more than {max_depth} levels deep") from None
    except json.JSONDecodeError as exc:
        raise JsonProblem(where, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:  # a float or constant refused above, or an integer of over 4300 digits
        raise JsonProblem(where, f"is not accepted JSON: {exc}") from None
    problem = tree_problem(data, where, max_depth)
    if problem is not None:
        raise problem
    return data


def scrub(value: Any) -> Any:
    """`value` with U+0000 and lone surrogates replaced by U+FFFD in every string and key, and NaN
    or an infinity by null (the same object when there is nothing to replace)."""
    if isinstance(value, str):
        return _BAD.sub(REPLACEMENT, value) if _BAD.search(value) else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        items = [(scrub(k), scrub(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items())):
            return value
        return dict(items)
    if isinstance(value, list):
        items = [scrub(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    return value
