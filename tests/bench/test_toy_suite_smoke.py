"""Smoke test of bench/toy_suite.py: the --quick run finishes and prints every table.

It checks that the benchmark runs and reports, not what it measures: timings are never asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "toy_suite.py"

TITLES = [
    "== 1. Quality:",
    "== 2a. Loss code alone:",
    "== 2b. Training step time:",
    "== 2b'. straightline.train end to end",
    "== 2c. Exact OT coupling:",
    "== 2d. Sampling:",
    "== 2e. Where straightline's own per-call time goes",
    "== 3. Time to quality on moons:",
    "== 4. Targets (issue 2) ==",
]


@pytest.mark.slow
@pytest.mark.timeout(120)  # designed for < 60 s (about 20 s of CPU); slack for a loaded machine
def test_quick_run_prints_every_table():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=115,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    for title in TITLES:
        assert title in text, f"missing table {title!r} in:\n{text[-3000:]}"
    assert "torch.set_num_threads(" in text
    # every dataset x coupling row of the quality table, and a verdict on every target line
    for name in ("moons", "8gaussians", "checkerboard"):
        for coupling in ("independent", "exact_ot"):
            assert any(line.startswith(name) and coupling in line for line in text.splitlines()), (name, coupling)
    targets = text.split("== 4. Targets (issue 2) ==", 1)[1]
    for what in ("loss code overhead", "training step time", "exact OT coupling at batch 256",
                 "sampling at 100 Euler steps", "time to quality"):
        line = next((ln for ln in targets.splitlines() if ln.startswith(what)), None)
        assert line is not None, f"target {what!r} missing:\n{targets}"
        assert any(v in line for v in ("PASS", "FAIL")), line
