"""Datasets: versioned 2-D toy distributions and the bundled 8x8 digits."""

from .digits import digits
from .toy import TOY_VERSION, toy, toy_names

__all__ = ["toy", "toy_names", "digits", "TOY_VERSION"]
