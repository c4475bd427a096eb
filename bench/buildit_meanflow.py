"""The Ch 7 Build-It (`meanflow_target`) against the Ch 4 one (`cfm_loss`), in the real sandbox.

    .venv/bin/python bench/buildit_meanflow.py            # ~3 min on 2 cores
    .venv/bin/python bench/buildit_meanflow.py --repeats 3

For each exercise: the time to grade a correct submission (fork server, the zygote up, a child
forked per submission; median over repeats, the first submission not measured), the tests it
runs, and "run it in the simulation" (the learner's function training the small network in the
sandbox, then the toolkit's reference run, which a server computes once per exercise and caches):
wall time, W2 to the data of the learner's samples, the reference's, and the floor. Prints a
table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "grader"))

from straightline.grader import Grader, GraderSettings, get_exercise  # noqa: E402

CFM = """import torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    x_0 = noise_fn(x_1)
    t = torch.rand(x_1.shape[0])
    tb = t.view(-1, *([1] * (x_1.dim() - 1)))
    x_t = (1 - tb) * x_0 + tb * x_1
    return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
"""


def _solution(exercise: str) -> str:
    if exercise == "cfm_loss":
        return CFM
    from test_grader_meanflow import SOLUTION

    return SOLUTION


def _grade_seconds(grader: Grader, exercise: str, repeats: int) -> list[float]:
    code = _solution(exercise)
    assert grader.grade(exercise, code).passed  # the zygote starts here; not measured
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = grader.grade(exercise, code)
        out.append(time.perf_counter() - start)
        assert result.passed, result.message
    return out


def _run(grader: Grader, exercise: str) -> tuple[float, object]:
    start = time.perf_counter()
    result = grader.run_future(f"bench-{exercise}", exercise, _solution(exercise)).result()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    rows = []
    settings = GraderSettings(warm_workers=0, run_timeout_s=300, run_cpu_seconds=300)
    with Grader(settings) as grader:
        for exercise in ("cfm_loss", "meanflow_target"):
            seconds = _grade_seconds(grader, exercise, args.repeats)
            run_s, run = _run(grader, exercise)
            rows.append([exercise, len(get_exercise(exercise).cases), f"{statistics.median(seconds):.2f}",
                         f"{max(seconds):.2f}", run.train_steps, f"{run_s:.1f}", f"{run.w2}", f"{run.w2_reference}",
                         f"{run.w2_floor}", run.status])
    head = ["exercise", "tests", "grade s (median)", "grade s (max)", "train steps", "run s (incl. reference)",
            "W2 yours", "W2 toolkit", "W2 floor", "run status"]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
