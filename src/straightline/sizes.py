"""Byte sizes, defined once for every setting that counts bytes."""

__all__ = ["KIB", "MIB", "GIB"]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
