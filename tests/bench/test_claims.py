"""Smoke test of bench/claims.py: the --quick run writes every experiment file the course reads.

It checks that the benchmark runs and that its files load with the course's own loader, have the
expected columns and hold finite numbers; it does not check what the quick sizes measure.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from straightline.course.experiments import load_experiment
from straightline.course.floors import w2_words
from straightline.metrics import W2Floor

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "claims.py"

COLUMNS = {
    "steps": ["data (metric)", "sampler", "NFE", "quality", "floor", "floor 10 %", "floor 90 %", "vs floor"],
    "reflow": ["model", "reflow rounds", "W2 @1 step", "W2 @2 steps", "W2 @4 steps", "W2 @100 steps",
               "straightness", "W2 floor", "W2 floor 10 %", "W2 floor 90 %"],
    "reflow-rounds": ["round", "training loss", "straightness", "W2 to data @100 steps", "W2 to data @1 step",
                      "W2 floor", "W2 floor 10 %", "W2 floor 90 %"],
    "few-step-ddim": ["data (metric)", "model", "sampler", "NFE", "quality", "floor", "floor 10 %", "floor 90 %",
                      "vs floor"],
    "guidance": ["guidance w", "class accuracy", "within-class distance", "real within-class distance", "digit FD",
                 "FD floor", "FD floor 10 %", "FD floor 90 %"],
    "eps-weighting": ["t band", "share of steps", "share of epsilon-loss weight", "share under flow matching"],
}
MIN_ROWS = {"steps": 2 * (7 + 1 + 5), "reflow": 6, "reflow-rounds": 6, "few-step-ddim": 2 * 12, "guidance": 5,
            "eps-weighting": 6}
TABLES = ["== 1. steps:", "== 2. reflow:", "== 3. reflow-rounds:", "== 4. few-step-ddim:", "== 5. guidance:",
          "== Verdicts:", "== Run time =="]


@pytest.mark.timeout(240)  # about 30 s on a shared 2-core machine
def test_quick_run_writes_every_experiment_file(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=230,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for title in TABLES:
        assert title in proc.stdout, f"missing table {title!r}"
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(COLUMNS)
    for key, columns in COLUMNS.items():
        exp = load_experiment(key, tmp_path)
        assert exp is not None, key
        assert exp.columns == columns, (key, exp.columns)
        assert len(exp.rows) >= MIN_ROWS[key], (key, len(exp.rows))
        assert "bench/claims.py" in exp.caption and exp.title
        numbers = [c for row in exp.rows for c in row if isinstance(c, (int, float))]
        assert numbers and all(math.isfinite(c) for c in numbers), key
        # the quality columns are numbers in every row (labels are the only strings)
        for row in exp.rows:
            for name, cell in zip(columns, row):
                if name not in ("data (metric)", "sampler", "model", "t band", "vs floor"):
                    assert isinstance(cell, (int, float)), (key, name, cell)
            # one floor: the band is ordered and its mean lies inside [10 %, 90 %]'s hull
            floors = [row[columns.index(c)] for c in columns if "floor" in c and c != "vs floor"]
            if floors:
                mean, low, high = floors
                assert 0 < low <= high and low <= mean <= high * 1.5, (key, floors)
            if "vs floor" in columns:  # the words of course.floors.w2_words (the file's cells are rounded)
                words = row[columns.index("vs floor")]
                expected = w2_words(row[columns.index("quality")], W2Floor(0, mean, low, high, 2))
                if "×" in expected:
                    got, want = float(words.split("×")[0]), float(expected.split("×")[0])
                    assert abs(got - want) <= 0.101 + 0.01 * want, (key, row, expected)
                else:
                    assert words == expected, (key, row)


def test_only_selects_experiments(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--only", "guidance", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [p.name for p in tmp_path.glob("*.json")] == ["guidance.json"]
