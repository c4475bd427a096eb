"""Smoke test of bench/flowmaps.py: the --quick run prints every table and writes a flowmaps.json the
course's loader reads. It checks that the benchmark runs, not what the quick sizes measure."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from straightline.course.experiments import load_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_quick_run_writes_the_experiment_file(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "flowmaps.py"), "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=290, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for title in ("== moons (W2)", "== 8gaussians (W2)", "== digits (digit FD)", "== MeanFlow side by side",
                  "== Adversarial", "== Verdicts"):
        assert title in proc.stdout, title
    exp = load_experiment("flowmaps", tmp_path)
    assert exp is not None and "bench/flowmaps.py" in exp.caption
    assert len(exp.rows) == 3 * 7
    assert all(math.isfinite(c) for row in exp.rows for c in row if isinstance(c, (int, float)))
    curves = json.loads((tmp_path / "flowmaps.json").read_text())["meanflow_curves"]
    assert "straightline MeanFlow" in curves and all(len(p) == 4 for p in curves["straightline MeanFlow"])
    data = json.loads((tmp_path / "flowmaps.json").read_text())
    paper = data["paper_defaults_meanflow"]  # the adversarial scenario: rows over training, for the chapter to quote
    assert len(paper["rows"]) == 8 and all(len(r) == len(paper["columns"]) == 5 for r in paper["rows"])
    assert [r[0] for r in paper["rows"]] == sorted(r[0] for r in paper["rows"]) and len(paper["between_checkpoints"]) == 7
    assert {v["target"] for v in data["verdicts"]} >= {"MeanFlow 1-step W2 on moons <= 1.5x floor"}
    assert all(isinstance(v["met"], bool) for v in data["verdicts"]) and "--quick" in data["notes"]
