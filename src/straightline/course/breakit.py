"""What the Chapter 5 Break-It lab offers, and its measured damage table.

The lab (`euler-faults` in sims.py, drawn by static/sims/euler-faults.js) runs the healthy Euler
sampler and the same sampler with faults switched on. It offers the step counts `LAB_STEPS` on the
datasets `LAB_DATASETS`, at its default 1000 particles and seed 0. `measure` runs every
(dataset x fault x step count) combination through the lab itself; `write_table` ships the result
as `experiments/break-it.json`, which the lab's caption quotes (`{{break-it | ...}}`).

    python -m straightline.course.breakit     # regenerate the table (needs the shipped models)
"""

from __future__ import annotations

import json
from pathlib import Path

from straightline.faults import fault_names

__all__ = ["LAB_STEPS", "LAB_DATASETS", "TABLE_FILE", "measure", "write_table"]

#: one Euler step is left out: there even the healthy sampler sends every particle to about the
#: data's mean (x_0 + v(x_0, 0) = E[x_1] for the exact field), so no fault has anything left to break
LAB_STEPS = (2, 3, 5, 10, 20, 50, 100)
LAB_DATASETS = ("two_clusters", "moons", "8gaussians")
TABLE_FILE = Path(__file__).parent / "experiments" / "break-it.json"
COLUMNS = ["dataset", "fault", "steps", "healthy W2", "broken W2", "times healthy"]


def measure(sims) -> list[list]:
    """One row per (dataset, fault, steps): W2 of the healthy and the broken sampler, and their ratio."""
    rows = []
    for dataset in LAB_DATASETS:
        for fault in fault_names():
            for steps in LAB_STEPS:
                out = sims.run("euler-faults", {"dataset": dataset, "faults": [fault], "steps": steps})
                healthy, broken = out["quality_before"]["w2"], out["quality_after"]["w2"]
                rows.append([dataset, fault, steps, healthy, broken, round(broken / healthy, 3 if broken < 10 * healthy else 1)])
    return rows


def write_table(sims, path: Path = TABLE_FILE) -> Path:
    doc = {
        "title": "Break-It: what each fault does to the samples",
        "caption": (
            "The Chapter 5 lab on the shipped models trained with independent pairs: 1000 particles from the "
            "same noise (seed 0), Euler with each step count the lab offers, W2 to 1000 fresh data points for the "
            "healthy sampler and with one fault switched on. 'times healthy' is the broken W2 over the healthy one. "
            "`python -m straightline.course.breakit` regenerates this file."
        ),
        "columns": COLUMNS,
        "rows": measure(sims),
    }
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    import torch

    from .shipped import load_shipped
    from .sims import Simulations

    torch.set_num_threads(1)
    print(write_table(Simulations(load_shipped())))
