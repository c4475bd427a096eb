"""A chapter folder copied for one test, with one passage of one file changed: how the tests of
content errors break a chapter (imported by the tests in this folder)."""

from __future__ import annotations

import shutil
from pathlib import Path


def edited_copy(source: Path, tmp_path: Path, file: str, old: str = "", new: str = "") -> tuple[Path, Path, str]:
    """Copies the chapter folder `source` to tmp_path/chapters and, in `file`, replaces the first
    `old` by `new` (asserting `old` is there). Returns the copy, the file and the file's text."""
    content = tmp_path / "chapters"
    shutil.copytree(source, content)
    path = content / file
    text = path.read_text()
    if old:
        assert old in text, old
        text = text.replace(old, new, 1)
        path.write_text(text)
    return content, path, text
