"""Smoke test of bench/ddpm_digits.py: the --quick run writes both experiment files the course reads,
and its oracle control does what the chapter says it proves.

At quick sizes the trained networks are tiny (their rows mean nothing), but the oracle rows use no
network: ancestral DDPM with the EXACT epsilon of the empirical distribution of the 1797 digits
draws real digits, so its FD sits at the floor whatever the sizes (1000 steps, 128 samples).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from straightline.course.experiments import load_experiment

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "ddpm_digits.py"

COLUMNS = {
    "ddpm-steps": ["test", "sampler", "NFE", "digit FD", "FD / floor", "roughness / real digits'", "contrast / real digits'"],
    "ddpm-eps-error": ["DDPM steps k", "flow time t_k", "eps-model: MSE to exact eps", "flow model as eps: MSE to exact eps",
                       "eps-model: share of DDPM's KL bound", "flow model: share of DDPM's KL bound"],
}


@pytest.mark.timeout(300)  # about 15 s of CPU; a minute on a busy 2-core machine
def test_quick_run_writes_both_files_and_the_oracle_ddpm_reaches_the_floor(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=290, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for key, columns in COLUMNS.items():
        exp = load_experiment(key, tmp_path)
        assert exp is not None and exp.columns == columns, key
        assert "bench/ddpm_digits.py" in exp.caption
        numbers = [c for row in exp.rows for c in row if isinstance(c, (int, float))]
        assert numbers and all(math.isfinite(c) for c in numbers), key
    rows = load_experiment("ddpm-steps", tmp_path).rows
    assert len(rows) == 20
    oracle = next(r for r in rows if r[0] == "oracle" and r[1].startswith("DDPM"))
    assert oracle[2] == 1000 and 0.7 < oracle[4] < 1.3, oracle  # FD / floor
    shares = load_experiment("ddpm-eps-error", tmp_path).rows
    assert sum(r[4] for r in shares) == pytest.approx(1, abs=0.01)
