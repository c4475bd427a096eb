"""The 8x8 handwritten digits bundled with scikit-learn (1797 images, offline)."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["digits"]


@lru_cache(maxsize=1)
def _load() -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = torch.tensor(bunch.images, dtype=torch.float32)  # [1797, 8, 8] in 0..16
    images = (pixels / 8.0 - 1.0).unsqueeze(1)  # [1797, 1, 8, 8] in [-1, 1]
    labels = torch.tensor(bunch.target, dtype=torch.int64)  # [1797]
    return images, labels


def digits() -> tuple[Tensor, Tensor]:
    """(images [1797, 1, 8, 8] float32 in [-1, 1], labels [1797] int64 in 0..9)."""
    images, labels = _load()
    return images.clone(), labels.clone()
