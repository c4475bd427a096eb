"""Regenerate the shipped precomputed simulation results (`precomputed.py`) from the shipped models.

    python -m straightline.course.build_precomputed     # after `straightline build-models`

It lives apart from `precomputed.py` because it needs `sims.py`, which reads the table: kept in
one module, the two would import each other.
"""

from __future__ import annotations

import torch

from .precomputed import write_table
from .shipped import load_shipped
from .sims import Simulations

__all__ = ["main"]


def main() -> None:
    torch.set_num_threads(1)
    print(write_table(Simulations(load_shipped())))


if __name__ == "__main__":
    main()
