"""Argument checks shared by the toolkit: errors quote the bad value and what is accepted."""

from __future__ import annotations

from collections.abc import Collection

from torch import Tensor

__all__ = ["check_time", "check_same_shape", "check_positive_int", "check_choice"]


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


def check_choice(value: object, name: str, accepted: Collection, other: str = "") -> object:
    """`value` if it is one of `accepted`, else ValueError "unknown NAME VALUE; accepted: A, B{other}"
    (`other` names what else is accepted, e.g. " or a function")."""
    try:
        known = value in accepted
    except TypeError:  # an unhashable value is never a name
        known = False
    if not known:
        raise ValueError(f"unknown {name} {value!r}; accepted: {', '.join(map(str, accepted))}{other}")
    return value
