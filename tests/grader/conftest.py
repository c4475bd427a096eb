"""Fixtures for the grader's tests.

`sandbox_grader` is one real, bubblewrap-sandboxed grader shared by the module that asks for it
(short limits, so hostile submissions end quickly). Tests that need the sandbox are skipped with
a clear reason when bubblewrap is missing (`grader_support.needs_bwrap`); `make test` installs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from straightline.grader import Grader, GraderSettings


@pytest.fixture(scope="module")
def sandbox_grader() -> Iterator[Grader]:
    settings = GraderSettings(
        timeout_s=6, cpu_seconds=5, memory_bytes=1024**3, max_concurrent=2, warm_workers=2
    )
    with Grader(settings) as grader:
        yield grader
