"""Fixtures for the grader's tests.

`sandbox_grader` is one real, bubblewrap-sandboxed grader shared by the module that asks for it
(short limits, so hostile submissions end quickly), once per sandbox mode: a sandbox per worker,
and the fork server (every test that uses it runs in both). Tests that need the sandbox are
skipped with a clear reason when bubblewrap is missing (`grader_support.needs_bwrap`); `make test`
installs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grader_support import MODES, grader_in_mode
from straightline.grader import Grader, GraderSettings


@pytest.fixture(scope="module", params=MODES)
def sandbox_grader(request: pytest.FixtureRequest) -> Iterator[Grader]:
    # the CPU-time limit sits well above the wall-clock one: a spinning loop must meet the 6 s
    # deadline (its verdict names the hung test), not race a 5-6 s CPU limit to a SIGKILL
    settings = GraderSettings(
        timeout_s=6, cpu_seconds=9, memory_bytes=1024**3, max_concurrent=2, warm_workers=2
    )
    with grader_in_mode(settings, request.param) as grader:
        yield grader
