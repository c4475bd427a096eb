"""Every script in examples/ runs, at reduced size, as a user would start it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(args, cwd, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


def test_own_2d_data_from_a_file(tmp_path):
    out = run([str(EXAMPLES / "own_2d_data.py"), "ring.npy", "--make-demo", "--steps", "40", "--hidden", "32"], tmp_path)
    assert "W2 to the data" in out
    assert np.load(tmp_path / "samples.npy").shape == (2000, 2)


def test_tabular_16d(tmp_path):
    out = run([str(EXAMPLES / "tabular_16d.py"), "--steps", "40", "--rows", "600", "--hidden", "32"], tmp_path)
    assert out.count("validation loss") == 4 and "(16-D)" in out
    assert torch.load(tmp_path / "tabular-state.pt", weights_only=True)["step"] == 40


def test_pngio_round_trip(tmp_path):
    sys.path.insert(0, str(EXAMPLES))
    try:
        from pngio import read_png, write_png
    finally:
        sys.path.remove(str(EXAMPLES))
    pixels = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    write_png(tmp_path / "a.png", pixels)
    assert np.array_equal(read_png(tmp_path / "a.png"), pixels)


def test_images_from_a_folder_of_pngs(tmp_path):
    out = run([str(EXAMPLES / "images_from_pngs.py"), "pngs", "--make-demo", "--per-class", "6", "--steps", "15",
               "--channels", "8"], tmp_path)
    assert "60 images of 10 classes" in out
    assert len(list((tmp_path / "png-samples").glob("class-*.png"))) == 10


def test_torchrun_script_on_two_cpu_processes(tmp_path):
    args = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            str(EXAMPLES / "torchrun_train.py"), "--steps", "12", "--batch-size", "32", "--hidden", "16"]
    out = run(args, tmp_path)
    assert "on 2 process(es)" in out
    assert (tmp_path / "torchrun-run" / "model.safetensors").is_file()
