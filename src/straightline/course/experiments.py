"""Measured experiment results that adversarial elements show (`experiment: KEY`).

The advanced-toolkit issue writes one JSON file per experiment into `course/experiments/`
(`KEY.json`); until a file exists the element shows a "coming with the advanced-toolkit issue"
panel. The file format:

    {"title": "Reflow rounds on two moons",
     "caption": "What was run, on what, with which seed.",
     "columns": ["round", "loss", "W2 to data"],
     "rows": [[0, 0.42, 0.118], [1, 0.31, 0.097]]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_EXPERIMENTS_DIR", "Experiment", "load_experiment"]

DEFAULT_EXPERIMENTS_DIR = Path(__file__).parent / "experiments"


@dataclass(frozen=True)
class Experiment:
    key: str
    title: str
    caption: str
    columns: list[str]
    rows: list[list[str | int | float]]


def load_experiment(key: str, directory: Path | None = None) -> Experiment | None:
    """The measured results for `key`, or None when they do not exist yet.

    Raises ValueError naming the file when it exists but is malformed.
    """
    path = (directory or DEFAULT_EXPERIMENTS_DIR) / f"{key}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        columns = [str(c) for c in data["columns"]]
        rows = [list(r) for r in data["rows"]]
        if any(len(r) != len(columns) for r in rows):
            raise ValueError(f"every row needs {len(columns)} cells")
        return Experiment(key, str(data["title"]), str(data.get("caption", "")), columns, rows)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid experiment file ({exc})") from None
