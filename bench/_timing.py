"""Timing and table helpers for the benchmarks: medians over interleaved repeats, never assertions.

Timings on a small shared machine drift (other processes, frequency changes). Everything here
therefore (1) runs the variants being compared round-robin, rotating the order every round, so a
slow patch hits all of them alike, (2) reports medians, and (3) forms ratios *per round* (paired)
before taking their median, with the interquartile range as the noise estimate.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Sequence

__all__ = ["use_clock", "now", "clock_name", "interleaved", "median", "paired_ratio", "fmt_time", "fmt_ratio",
           "table", "verdict", "load_average"]

_CLOCKS = {
    # CPU time of the calling thread: with torch at one intra-op thread every library measured here computes
    # in the calling thread, and time spent descheduled (other processes on a shared machine) is not counted
    "cpu": (time.thread_time, "CPU time of the benchmark thread (time.thread_time)"),
    "wall": (time.perf_counter, "wall-clock time (time.perf_counter)"),
}
_clock = ["wall"]


def use_clock(kind: str) -> None:
    if kind not in _CLOCKS:
        raise ValueError(f"unknown clock {kind!r}; accepted: {', '.join(_CLOCKS)}")
    _clock[0] = kind


def now() -> float:
    return _CLOCKS[_clock[0]][0]()


def clock_name() -> str:
    return _CLOCKS[_clock[0]][1]


def interleaved(
    fns: dict[str, Callable[[], object]], *, repeats: int, number: int = 1, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each variant: `repeats` samples, each the mean over `number` calls."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = fns[name]
            start = now()
            for _ in range(number):
                fn()
            samples[name].append((now() - start) / number)
    return samples


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Median and interquartile range of a[i] / b[i] (samples taken in the same round)."""
    ratios = sorted(x / y for x, y in zip(a, b))
    if len(ratios) == 1:
        return ratios[0], ratios[0], ratios[0]
    q1, q2, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return q2, q1, q3


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_ratio(r: float | None, iqr: tuple[float, float] | None = None) -> str:
    if r is None:
        return "-"
    s = f"{r:.2f}x"
    if iqr is not None:
        s += f" [{iqr[0]:.2f}-{iqr[1]:.2f}]"
    return s


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str] = ()) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        out = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(out).rstrip()

    rule = "-" * len(line(cells[0]))
    parts = [f"\n== {title} ==", line(cells[0]), rule] + [line(r) for r in cells[1:]]
    parts += [f"  note: {n}" for n in notes]
    return "\n".join(parts)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the header and footer of a benchmark's output."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())
