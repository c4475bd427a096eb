"""Argument checks shared by the toolkit: errors quote the bad value and what is accepted."""

from __future__ import annotations

from torch import Tensor

__all__ = ["check_time", "check_same_shape", "check_positive_int"]


def check_time(t: Tensor, batch: int, name: str = "t") -> None:
    if t.ndim != 1 or t.shape[0] != batch:
        raise ValueError(f"{name} must have shape [{batch}] (one time per sample), got {list(t.shape)}")
    if t.numel() and (t.min() < 0 or t.max() > 1):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{t.min().item():.4g}, {t.max().item():.4g}]"
        )


def check_same_shape(a: Tensor, b: Tensor, names: tuple[str, str] = ("x_0", "x_1")) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    if a.ndim < 2:
        raise ValueError(f"{names[0]} must be a batch of shape [B, ...] with at least 2 dimensions, got {list(a.shape)}")


def check_positive_int(value: object, name: str, upper: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (upper is not None and value > upper):
        accepted = f"an integer in 1..{upper}" if upper is not None else "a positive integer"
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return value
