"""The parsed, rendered course, cached on disk so that later starts skip the Markdown and MathML work.

The cache file `DATA_DIR/cache/course-<key>.pickle` is keyed by a hash of everything the rendered
course depends on: the chapter files, the source of the straightline package (the loader, the
renderer, and the toolkit code that listings quote) and the versions of the rendering libraries.
Change any of them and the key changes, so a stale cache is never used; it is simply rebuilt. The
first start (or any start after a change) loads and validates the course as usual, and a
`ContentError` still stops start-up.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from importlib import metadata
from pathlib import Path

from ..course.content import DEFAULT_CHAPTERS_DIR, Course, load_course

__all__ = ["cache_key", "load_course_cached"]

_PACKAGE = Path(__file__).resolve().parents[1]  # .../straightline
_LIBRARIES = ("latex2mathml", "markdown-it-py", "mdit-py-plugins", "pygments", "pyyaml")
_FORMAT = b"course-cache-1"


def cache_key(content_dir: Path) -> str:
    digest = hashlib.sha256(_FORMAT)
    for path in sorted(content_dir.glob("*.md")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for path in sorted(_PACKAGE.rglob("*.py")):
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    for path in sorted((_PACKAGE / "course" / "figures" / "svg").glob("*.svg")):  # inlined into pages
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=?".encode())
    return digest.hexdigest()[:32]


def load_course_cached(content_dir: Path | None, cache_dir: Path) -> Course:
    """`load_course(content_dir)`, from the cache when the course and its code are unchanged."""
    directory = Path(content_dir) if content_dir is not None else DEFAULT_CHAPTERS_DIR
    key = cache_key(directory)
    path = cache_dir / f"course-{key}.pickle"
    try:
        with path.open("rb") as f:
            course = pickle.load(f)
        if isinstance(course, Course):
            return course
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        pass  # missing or unreadable: rebuild it
    course = load_course(directory)  # raises ContentError on a malformed chapter
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in cache_dir.glob("course-*.pickle"):
            old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".course-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(course, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only data directory only costs the next start some time
    return course
