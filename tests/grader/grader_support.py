"""Helpers shared by the grader's tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import os
import shutil

import pytest

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not installed; `make test` installs it")


def processes_with(marker: str) -> list[tuple[int, str]]:
    """Processes on this machine whose command line contains `marker` (the sandbox's tag)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append((int(entry), cmdline.replace(b"\0", b" ")[:200].decode(errors="replace")))
    return found
