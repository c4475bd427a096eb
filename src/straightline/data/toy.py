"""Versioned 2-D toy datasets: every definition lives here, once.

All datasets are centred near the origin with a spread comparable to N(0, I), so a flow from
standard Gaussian noise has to move mass by a few units at most.

| name           | definition (before noise)                                                  | noise |
|----------------|-----------------------------------------------------------------------------|-------|
| `two_clusters` | two equal-weight Gaussians at (-2, 0) and (+2, 0)                            | std 0.35 per component |
| `8gaussians`   | eight equal-weight Gaussians at radius 2.5, angles k·45°, k = 0..7          | std 0.2 per component |
| `moons`        | sklearn-style two moons: (cos a, sin a) and (1 - cos a, 0.5 - sin a), a ~ U(0, π), shifted by (-0.5, -0.25) and scaled by 1.6 | N(0, 0.1²) before scaling |
| `checkerboard` | uniform on the 8 dark squares of a 4 x 4 board covering [-2, 2]², square (i, j) dark when i + j is even | none |
| `spirals`      | two interleaved arms r = 2.5 a / (3π), a ~ U(π/4, 3π), the second arm rotated by π | N(0, 0.08²) |

Version 1 of these definitions; changing any number is a breaking change that the pinned-draw
test catches.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .._checks import check_choice

__all__ = ["toy", "toy_names", "TOY_VERSION", "TOY_MIXTURES", "mixture_parameters"]

TOY_VERSION = 1

Generator = torch.Generator | None


def _randn(n: int, d: int, g: Generator) -> Tensor:
    return torch.randn(n, d, generator=g)


def _rand(n: int, g: Generator) -> Tensor:
    return torch.rand(n, generator=g)


def _mixture(centres: Tensor, std: float, n: int, g: Generator) -> Tensor:
    idx = torch.randint(len(centres), (n,), generator=g)  # [n]
    return centres[idx] + std * _randn(n, 2, g)  # [n, 2]


#: the toy datasets that are Gaussian mixtures (equal weights); `mixture_parameters` gives them
TOY_MIXTURES = ("two_clusters", "8gaussians")


def mixture_parameters(name: str, dtype: torch.dtype = torch.float32) -> tuple[Tensor, float]:
    """(centres [K, 2], std of every component) of a mixture dataset; `oracles.toy_mixture` uses them too."""
    if name == "two_clusters":
        return torch.tensor([[-2.0, 0.0], [2.0, 0.0]], dtype=dtype), 0.35
    if name == "8gaussians":
        angles = torch.arange(8, dtype=dtype) * (math.pi / 4)  # [8]
        return 2.5 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1), 0.2  # [8, 2]
    raise ValueError(f"{name!r} is not a mixture dataset; accepted: {', '.join(TOY_MIXTURES)}")


def _two_clusters(n: int, g: Generator) -> Tensor:
    return _mixture(*mixture_parameters("two_clusters"), n, g)


def _eight_gaussians(n: int, g: Generator) -> Tensor:
    return _mixture(*mixture_parameters("8gaussians"), n, g)


def _moons(n: int, g: Generator) -> Tensor:
    upper = torch.rand(n, generator=g) < 0.5  # [n] which moon
    a = math.pi * _rand(n, g)  # [n]
    x = torch.where(upper, torch.cos(a), 1.0 - torch.cos(a))
    y = torch.where(upper, torch.sin(a), 0.5 - torch.sin(a))
    pts = torch.stack([x, y], dim=1) + 0.1 * _randn(n, 2, g)  # [n, 2]
    return 1.6 * (pts - torch.tensor([0.5, 0.25]))


def _checkerboard(n: int, g: Generator) -> Tensor:
    dark = torch.tensor([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=torch.float32)
    idx = torch.randint(len(dark), (n,), generator=g)  # [n]
    corner = dark[idx] - 2.0  # [n, 2] lower-left corner of the chosen square
    return corner + torch.rand(n, 2, generator=g)


def _spirals(n: int, g: Generator) -> Tensor:
    second = torch.rand(n, generator=g) < 0.5  # [n]
    a = math.pi / 4 + (3 * math.pi - math.pi / 4) * _rand(n, g)  # [n]
    r = 2.5 * a / (3 * math.pi)
    angle = a + math.pi * second.float()
    pts = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)  # [n, 2]
    return pts + 0.08 * _randn(n, 2, g)


_DATASETS: dict[str, Callable[[int, Generator], Tensor]] = {
    "two_clusters": _two_clusters,
    "8gaussians": _eight_gaussians,
    "moons": _moons,
    "checkerboard": _checkerboard,
    "spirals": _spirals,
}


def toy_names() -> list[str]:
    """Names accepted by `toy`."""
    return list(_DATASETS)


def toy(name: str, n: int, *, seed: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """`n` points of the 2-D dataset `name` as a float32 tensor of shape [n, 2].

    `seed` makes the draw reproducible (the same seed gives the same points on every machine);
    alternatively pass a `generator` to draw from a stream. Neither: torch's global RNG.
    """
    check_choice(name, "dataset", _DATASETS)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    return _DATASETS[name](n, generator).to(torch.float32).contiguous()
