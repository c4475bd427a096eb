"""The on-disk cache of the rendered course: used when nothing changed, rebuilt when anything did,
and never hides a malformed chapter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from straightline.course.content import ContentError
from straightline.web.course_cache import cache_key, load_course_cached

from web_support import FIXTURE_CHAPTERS


def test_the_cache_is_used_and_follows_the_content(tmp_path: Path) -> None:
    content = tmp_path / "chapters"
    shutil.copytree(FIXTURE_CHAPTERS, content)
    cache = tmp_path / "cache"
    first = load_course_cached(content, cache)
    files = list(cache.glob("course-*.pickle"))
    assert [f.name for f in files] == [f"course-{cache_key(content)}.pickle"]
    again = load_course_cached(content, cache)
    assert [c.title for c in again.chapters] == [c.title for c in first.chapters]
    assert again.elements["a-check"].html == first.elements["a-check"].html

    path = content / "00-alpha.md"
    path.write_text(path.read_text().replace("title: Alpha, a test chapter", "title: Alpha, renamed"))
    changed = load_course_cached(content, cache)
    assert changed.chapters[0].title == "Alpha, renamed"
    assert len(list(cache.glob("course-*.pickle"))) == 1  # the stale entry is gone


def test_a_malformed_chapter_is_never_served_from_the_cache(tmp_path: Path) -> None:
    content = tmp_path / "chapters"
    shutil.copytree(FIXTURE_CHAPTERS, content)
    load_course_cached(content, tmp_path / "cache")
    path = content / "01-beta.md"
    path.write_text(path.read_text().replace("min_words: 5", "min_words: zero"))
    with pytest.raises(ContentError, match=r"01-beta\.md:\d+: checkpoint 'b-gate': min_words 'zero'"):
        load_course_cached(content, tmp_path / "cache")


def test_an_unreadable_cache_file_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"course-{cache_key(FIXTURE_CHAPTERS)}.pickle").write_bytes(b"not a pickle")
    course = load_course_cached(FIXTURE_CHAPTERS, cache)
    assert course.chapter("alpha") is not None
