"""The simulations' cost model (`course/simcost.py`) beside measured CPU time.

    python bench/sim_cost.py [--repeats 3] [--old-max]

For each request below (the course's dearest settings, the API's new maxima, and requests the cap
refuses) it prints the model's estimate and the median CPU time of the computation (the calling
thread's, torch at one thread, each run with a new seed so nothing is cached), and whether the
API admits it. `--old-max` adds the request the issue measured before the bounds
(`particles-flow?particles=5000&steps=1000&coupling=exact_ot`, 18.9 s then), computed with the
toolkit directly since the API now refuses it. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import load_average, median, table  # noqa: E402

CASES: list[tuple[str, dict, str]] = [
    ("particles-flow", {"particles": 2000}, "course max"),
    ("particles-flow", {"particles": 2000, "steps": 200}, "API max"),
    ("digit-emerging", {"images": 64, "steps": 200}, "API max"),
    ("curved-vs-straight", {"particles": 2000, "steps": 100}, "API max"),
    ("mixture-oracle", {"samples": 16384}, "course max"),
    ("velocity-field", {"grid": 64, "particles": 2000, "t": 1.0}, "API max"),
    ("euler-steps", {"steps": 100}, "course max"),
    ("euler-steps", {"particles": 2000, "steps": 500}, "API max"),
    ("euler-faults", {"steps": 100, "faults": ["curved-velocity", "frozen-time"]}, "course max"),
    ("euler-faults", {"particles": 2000, "steps": 500}, "over the cap"),
    ("solver-orders", {}, "course"),
    ("solver-orders", {"particles": 500}, "API max"),
    ("log-density", {"grid": 64, "steps": 50}, "course max"),
    ("reflow-straightening", {"round": 3, "steps": 50}, "course max"),
    ("guided-digits", {"images": 32, "steps": 50}, "API max"),
    ("rotation-flow", {"particles": 500, "steps": 200}, "API max"),
    ("side-by-side", {"particles": 400, "steps": 200}, "API max"),
    ("flowmap-nfe", {"nfe": 8}, "course max"),
    ("flowmap-nfe", {"particles": 1000, "nfe": 8}, "API max"),
    ("flowmap-jumps", {}, "course"),
    ("flowmap-jumps", {"particles": 150, "grid": 20}, "API max"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-max", action="store_true", help="also time the request the issue measured before the bounds")
    args = parser.parse_args()

    import time

    import torch

    from straightline.course import shipped
    from straightline.course.simcost import MAX_COST_S, estimate
    from straightline.course.simparams import PARAMS
    from straightline.course.sims import Simulations

    torch.set_num_threads(1)
    sims = Simulations(shipped.load_shipped(None), cache_size=1)
    cases = list(CASES)
    if args.old_max:
        cases.append(("particles-flow", {"particles": 5000, "steps": 1000, "coupling": "exact_ot"}, "old max (refused)"))
    rows = []
    for name, params, label in cases:
        times = []
        for seed in range(args.repeats):
            model = _params(PARAMS[name], {**params, "seed": 1000 + seed})
            started = time.thread_time()
            sims.run(name, model)  # an instance is not validated again, so the old maximum runs too
            times.append(time.thread_time() - started)
        est = estimate(name, model).seconds
        admitted = "yes" if est <= MAX_COST_S and _in_range(PARAMS[name], params) else "no (422)"
        rows.append([name, _short(params), label, f"{est:.2f}", f"{median(times):.2f}", f"{median(times) / est:.2f}", admitted])
    print(table(
        f"Simulation cost: estimate vs measured CPU seconds (median of {args.repeats}, one torch thread); cap {MAX_COST_S} s",
        ["simulation", "parameters", "which", "estimate s", "measured s", "measured/estimate", "admitted"],
        rows,
        notes=[load_average(), "Simulations.run with a one-entry cache and a new seed each run: every run computes"],
    ))


def _params(model, params: dict):
    """The parameter model; one out of range (the old maximum) is built without validation."""
    try:
        return model.model_validate(params)
    except ValueError:
        return model.model_construct(**{**model().model_dump(), **params})


def _in_range(model, params: dict) -> bool:
    try:
        model.model_validate(params)
    except ValueError:
        return False
    return True


def _short(params: dict) -> str:
    return " ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in params.items()) or "defaults"


if __name__ == "__main__":
    main()
