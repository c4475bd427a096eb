"""Helpers shared by the grader's tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Iterator

import pytest

from straightline.grader import Grader, GraderSettings

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not installed; `make test` installs it")

MODES = ("per_worker", "fork_server")  # a sandbox per worker; children of one zygote sandbox


@contextlib.contextmanager
def grader_in_mode(settings: GraderSettings, mode: str) -> Iterator[Grader]:
    """A started grader with `settings` in `mode`; in fork-server mode, once its first child is up
    (and it fails if the grader fell back to a sandbox per worker: the test would not test the mode)."""
    assert mode in MODES, mode
    with Grader(dataclasses.replace(settings, fork_server=mode == "fork_server")) as grader:
        if mode == "fork_server":
            server = grader.fork_server
            assert server is not None
            if settings.pool_size:
                deadline = time.monotonic() + 180
                while not (server.active or server.unavailable) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert server.active, f"the fork server is not in use: {server.unavailable}"
        yield grader


def processes_with(marker: str) -> list[tuple[int, str]]:
    """Processes on this machine whose command line contains `marker` (a sandbox's tag), or whose
    name is `marker` (a child of the fork server names itself after its submission's tag)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/comm", "rb") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if marker.encode() in cmdline or (marker and comm == marker.encode()[:15]):
            found.append((int(entry), cmdline.replace(b"\0", b" ")[:200].decode(errors="replace")))
    return found
