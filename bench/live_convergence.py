"""Does a live-training run converge at its default budget, and which setting fixes it when not?

Runs the live-training job itself (`course.live.run_job`, in this process) on each toy dataset at
several step counts and prints, per run, the W2 of its 300 samples to 300 data points, how far
they lie off the data (mean distance to the nearest data point) beside the same for two samples
of the data (its 90 % point over 10 pairs), and the verdict the page shows (converged when the
ratio is at most `live.CONVERGED_RATIO`). The only training setting a learner has is the number of
steps; the table says whether raising it to the most the page allows fixes the runs that fail.

    python bench/live_convergence.py [--datasets spirals,moons] [--steps 1500,5000] [--seeds 0]
"""

from __future__ import annotations

import argparse
import time

import torch

from straightline.course.live import Job, LiveParams, run_job


def run(dataset: str, steps: int, seed: int) -> tuple[dict, float]:
    job = Job(id="bench", learner="bench", params=LiveParams(dataset=dataset, steps=steps, snapshot_every=1000, seed=seed))
    start = time.perf_counter()
    run_job(job)
    events = []
    while not job.events.empty():
        events.append(job.events.get_nowait())
    return events[-1].get("quality", {}), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="two_clusters,8gaussians,moons,checkerboard,spirals")
    parser.add_argument("--steps", default="1500,5000")
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'dataset':<13} {'steps':>6} {'seed':>5} {'W2':>7} {'off data':>9} {'floor 90%':>10} {'ratio':>6} {'verdict':<14} {'s':>6}")
    for dataset in args.datasets.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                q, secs = run(dataset, steps, seed)
                verdict = "converged" if q["converged"] else "NOT converged"
                ratio = q["off_data"] / q["floor_high"]
                print(f"{dataset:<13} {steps:>6} {seed:>5} {q['w2']:>7.3f} {q['off_data']:>9.3f} {q['floor_high']:>10.3f} {ratio:>6.2f} {verdict:<14} {secs:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
