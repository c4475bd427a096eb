"""The `straightline train` / `sample` commands as a user runs them."""

import re
import subprocess
import sys

import numpy as np


def _run(*args):
    return subprocess.run([sys.executable, "-m", "straightline.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_then_sample(tmp_path):
    model = tmp_path / "moons.safetensors"
    r = _run("train", "--data", "moons", "--steps", "200", "--out", str(model), "--quiet", "--eval-n", "300")
    assert r.returncode == 0, r.stderr
    assert model.is_file()
    found = re.search(r"W2 ([0-9.]+) .* spans ([0-9.]+)-([0-9.]+): (inside|([0-9.]+)x above) that band", r.stdout)
    assert found, r.stdout
    dist, low, high = (float(found.group(i)) for i in (1, 2, 3))
    assert 0 < low <= high
    assert (found.group(4) == "inside") == (dist <= high)  # 200 steps may or may not reach it; the verdict must agree
    out = tmp_path / "samples.npy"
    r = _run("sample", "--model", str(model), "--steps", "20", "--method", "rk4", "--out", str(out), "--n", "500")
    assert r.returncode == 0, r.stderr
    x = np.load(out)
    assert x.shape == (500, 2) and np.isfinite(x).all()
    assert "80 evaluations" in r.stderr


def test_usage_errors_exit_2_and_name_the_value(tmp_path):
    cases = [
        (["train", "--data", "swissroll", "--out", "x.safetensors"], "swissroll"),
        (["train", "--data", "moons", "--steps", "0", "--out", "x.safetensors"], "steps must be in 1..1000000, got 0"),
        (["sample", "--model", str(tmp_path / "nope.safetensors"), "--out", "s.npy"], "does not exist"),
        (["sample", "--model", "m.safetensors", "--method", "rk5", "--out", "s.npy"], "rk5"),
        (["serve", "--port", "70000"], "port must be an integer in 1..65535, got 70000"),
    ]
    for args, needle in cases:
        r = _run(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert needle in r.stderr, (args, r.stderr)


def test_train_command_defaults_are_the_library_defaults():
    """`straightline train` documents the same defaults as `sl.train` and `MLP` (no drift between them)."""
    import inspect

    import straightline as sl
    from straightline.cli import build_parser
    from straightline.training import AUTO, TrainConfig

    args = build_parser().parse_args(["train", "--data", "moons", "--out", "m.safetensors"])
    config, mlp = TrainConfig(), inspect.signature(sl.models.MLP).parameters
    assert (args.steps, args.batch_size, args.lr) == (config.steps, config.batch_size, config.lr)
    assert (args.hidden, args.depth) == (mlp["hidden"].default, mlp["depth"].default)
    # the command trains unconditional points, for which train's "auto" coupling is exact OT
    assert inspect.signature(sl.train).parameters["coupling"].default == AUTO and args.coupling == "exact_ot"
