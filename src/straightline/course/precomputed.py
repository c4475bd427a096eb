"""Simulation results computed once, at build time, for the settings a chapter opens with.

Two simulations cost seconds per request on a 2-core machine: the Chapter 1 log-density heat maps
(an exact-divergence ODE for every grid cell) and the Chapter 5 error-vs-NFE plot (a float64
dopri5 reference at tolerance 1e-12). Their settings reachable from the page's controls at the
default seed are few, so `write_table` runs them through `Simulations` and ships the answers
(`precomputed/sims.json.gz`); `Simulations.run` serves a shipped answer before computing. A
test recomputes entries and compares them, so the file cannot drift from the models.

    python -m straightline.course.build_precomputed     # regenerate (after `straightline build-models`)
"""

from __future__ import annotations

import gzip
import json
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

__all__ = ["PRECOMPUTED_FILE", "SETTINGS", "bypassed", "lookup", "write_table"]

PRECOMPUTED_FILE = Path(__file__).parent / "precomputed" / "sims.json.gz"
_DATASETS = ("two_clusters", "moons", "8gaussians")

#: (simulation, parameters) pairs shipped precomputed: what the pages' controls reach at seed 0
SETTINGS: tuple[tuple[str, dict], ...] = (
    *(("solver-orders", {"dataset": d}) for d in _DATASETS),
    *(
        ("log-density", {"dataset": d, "coupling": c, "grid": g})
        for d in _DATASETS
        for c in ("independent", "exact_ot")
        for g in (24, 40, 64)
    ),
)


@lru_cache(maxsize=1)
def _table() -> dict[str, dict]:
    if not PRECOMPUTED_FILE.is_file():
        return {}
    with gzip.open(PRECOMPUTED_FILE, "rt", encoding="utf-8") as f:
        return json.load(f)


_BYPASS = [False]


@contextmanager
def bypassed():
    """Inside: `lookup` finds nothing, so every result is computed from the models (to rebuild the
    table, or to check it)."""
    _BYPASS[0] = True
    try:
        yield
    finally:
        _BYPASS[0] = False


def lookup(key: str) -> dict | None:
    """The shipped result for a cache key `name|params-json` (see Simulations.run), or None."""
    return None if _BYPASS[0] else _table().get(key)


def write_table(sims, path: Path = PRECOMPUTED_FILE) -> Path:
    """Run every setting through `sims` (bypassing the shipped table) and write the results."""
    out = {}
    with bypassed():
        for name, params in SETTINGS:
            model = sims.params_model(name, params)
            out[sims.cache_key(name, model)] = sims.compute(name, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(json.dumps(out, sort_keys=True).encode("utf-8"))
    _table.cache_clear()
    return path
