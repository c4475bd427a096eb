"""Batches for the training loop, from whatever a user holds: a toy dataset name, a tensor or numpy
array (with labels or a dict of per-row conditions), a `Dataset`, a `DataLoader`, an iterator or a
function that returns a batch.

Every source becomes a `Batches` object: `next()` gives this step's `Batch` (data x [B, ...] and the
conditions as keyword arguments, e.g. {"y": labels [B]}), already on the training device and in
the model's floating dtype. Under several processes (DDP) each rank gets its own slice of the global
batch: rows [rank * B / W, (rank + 1) * B / W) of the rows one process would have drawn, so a run on
W processes sees the same global batches as a run on one. `state()` / `restore()` record the
position in the data for resumable checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, default_collate

from ._checks import check_choice
from .data import toy, toy_names

__all__ = ["Batch", "Batches", "make_batches", "as_tensor", "check_finite", "index_batches", "per_rank_batch"]


@dataclass
class Batch:
    """One step's data x [B, ...] and its conditions (keyword arguments of the model, e.g. y [B])."""

    x: Tensor
    cond: dict[str, Any] = field(default_factory=dict)


def as_tensor(value: Any, name: str) -> Tensor:
    """A tensor from a tensor or numpy array (others: ValueError naming what is accepted)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")


def check_finite(x: Tensor, name: str) -> None:
    """ValueError naming the first row with a NaN or inf (float tensors only)."""
    if not x.is_floating_point():
        return
    bad = ~torch.isfinite(x.reshape(len(x), -1)).all(dim=1)  # [N]
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        kind = "NaN" if bool(torch.isnan(x[row]).any()) else "inf"
        raise ValueError(f"{name} contains {kind} (first in row {row} of {len(x)}); remove or replace those rows")


def _check_data_tensor(x: Tensor, name: str = "data") -> Tensor:
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(
            f"{name} must have shape [N, ...] with one row per example (at least 2 dimensions), got {list(x.shape)}; "
            "for N scalars use data.reshape(-1, 1)"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {x.dtype}; convert it, e.g. data.float()")
    check_finite(x, name)
    return x


class Batches:
    """The batch source of one training run (see the module docstring)."""

    def __init__(self, draw: Callable[[], Batch], rank: int = 0, world: int = 1, checked: bool = False):
        self._draw, self.rank, self.world = draw, rank, world
        self.position = 0  # batches drawn so far
        self.checked = checked  # True when the data were checked for NaN/inf up front
        self.raw = False  # True when x holds row indices for the loss, not data (no dtype conversion)

    def next(self) -> Batch:
        self.position += 1
        return self._draw()

    def state(self) -> dict[str, Any]:
        return {"position": self.position}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Skip to a recorded position by drawing (and dropping) the batches before it."""
        while self.position < state["position"]:
            self.next()

    def shard(self, batch: Batch) -> Batch:
        """This rank's rows of a global batch (all of it on one process)."""
        if self.world == 1:
            return batch
        rows = slice(*_shard_bounds(len(batch.x), self.rank, self.world))
        cond = {k: v[rows] if isinstance(v, Tensor) and v.ndim and len(v) == len(batch.x) else v for k, v in batch.cond.items()}
        return Batch(batch.x[rows], cond)


def _shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    if n % world:
        raise ValueError(f"the global batch of {n} rows does not split evenly over {world} processes")
    size = n // world
    return rank * size, (rank + 1) * size


class _Rows(Batches):
    """Shuffled epochs over N indexed rows, from a generator seeded alike on every rank."""

    def __init__(self, n: int, take: Callable[[Tensor], Batch], batch_size: int, generator: torch.Generator,
                 rank: int, world: int, checked: bool = False):
        super().__init__(self._next_rows, rank, world, checked)
        self.n, self.take, self.batch_size, self.generator = n, take, batch_size, generator
        self.order, self.pos = torch.randperm(n, generator=generator), 0  # [N], next row in order

    def _next_rows(self) -> Batch:
        parts, need = [], self.batch_size
        while need:
            part = self.order[self.pos : self.pos + need]
            parts.append(part)
            need -= len(part)
            self.pos += len(part)
            if self.pos >= self.n:
                self.order, self.pos = torch.randperm(self.n, generator=self.generator), 0
        index = torch.cat(parts)  # [batch_size] rows of the global batch
        lo, hi = _shard_bounds(len(index), self.rank, self.world)
        return self.take(index[lo:hi])

    def state(self) -> dict[str, Any]:
        return {"position": self.position, "order": self.order.clone(), "pos": self.pos,
                "generator": self.generator.get_state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.position, self.order, self.pos = state["position"], state["order"], state["pos"]
        self.generator.set_state(state["generator"])


class _Toy(Batches):
    """Fresh draws from a named toy dataset (the global batch drawn alike on every rank)."""

    def __init__(self, name: str, batch_size: int, generator: torch.Generator, rank: int, world: int):
        super().__init__(lambda: self.shard(Batch(toy(name, batch_size, generator=generator))), rank, world, True)
        self.generator = generator

    def state(self) -> dict[str, Any]:
        return {"position": self.position, "generator": self.generator.get_state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.position = state["position"]
        self.generator.set_state(state["generator"])


def index_batches(n: int, *, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1) -> Batches:
    """Batches whose x is a tensor of row indices [B] into a table of n rows (shuffled epochs):
    for losses over fixed tables (reflow pairs, distillation targets)."""
    per_rank_batch(batch_size, world)
    source = _Rows(n, Batch, batch_size, generator, rank, world, checked=True)
    source.raw = True
    return source


def _split_item(item: Any) -> Batch:
    """A collated item or batch: x, (x, y), (x, {cond}), or {"x": x, **cond}."""
    if isinstance(item, Tensor):
        return Batch(item)
    if isinstance(item, Mapping):
        if "x" not in item:
            raise ValueError(f"a dict batch needs the data under 'x', got keys {sorted(item)}")
        return Batch(item["x"], {k: v for k, v in item.items() if k != "x"})
    if isinstance(item, (tuple, list)) and len(item) == 2:
        x, c = item
        return Batch(x, dict(c) if isinstance(c, Mapping) else {"y": c})
    if isinstance(item, (tuple, list)) and len(item) == 1:
        return Batch(item[0])
    raise ValueError(
        f"a batch must be x, (x, y), (x, {{name: value}}) or {{'x': x, ...}}, got {type(item).__name__}"
        + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
    )


def _from_tensor(data: Tensor, cond: dict[str, Tensor], batch_size: int, gen: torch.Generator, rank: int,
                 world: int) -> Batches:
    data = _check_data_tensor(data)
    for key, value in cond.items():
        if len(value) != len(data):
            raise ValueError(f"{key} must have one entry per row of data ({len(data)}), got shape {list(value.shape)}")
    return _Rows(len(data), lambda idx: Batch(data[idx], {k: v[idx] for k, v in cond.items()}), batch_size, gen,
                 rank, world, checked=True)


def _from_dataset(data: Dataset, batch_size: int, gen: torch.Generator, rank: int, world: int) -> Batches:
    n = len(data)  # type: ignore[arg-type]
    if n < 1:
        raise ValueError("the Dataset is empty")
    return _Rows(n, lambda idx: _split_item(default_collate([data[int(i)] for i in idx])), batch_size, gen, rank,
                 world)


class _Stream(Batches):
    """A DataLoader (restarted at each epoch), an iterator, or a function returning batches."""

    def __init__(self, source: Any, rank: int, world: int):
        self.source = source
        self.iterator: Iterator[Any] | None = None
        super().__init__(self._next_item, rank, world)

    def _next_item(self) -> Batch:
        if callable(self.source) and not isinstance(self.source, (Iterable, Iterator)):
            return self.shard(_split_item(self.source()))
        if self.iterator is None:
            self.iterator = iter(self.source)
        try:
            item = next(self.iterator)
        except StopIteration:
            if not isinstance(self.source, DataLoader) and iter(self.source) is self.source:
                raise ValueError(f"the data iterator ran out after {self.position - 1} batches") from None
            self.iterator = iter(self.source)  # a new epoch
            item = next(self.iterator)
        return self.shard(_split_item(item))


def _conditions(labels: Any, cond: Mapping[str, Any] | None) -> dict[str, Tensor]:
    out = {name: as_tensor(value, name) for name, value in (cond or {}).items()}
    if labels is not None:
        out["y"] = as_tensor(labels, "labels")
    return out


def make_batches(data: Any, *, batch_size: int, generator: torch.Generator, labels: Any = None,
                 cond: Mapping[str, Any] | None = None, rank: int = 0, world: int = 1) -> Batches:
    """The batch source for `data` (see the module docstring); errors name what is accepted."""
    per_rank_batch(batch_size, world)
    conds = _conditions(labels, cond)
    if isinstance(data, str):
        check_choice(data, "dataset", toy_names(), ", or your own data")
        if conds:
            raise ValueError("labels and conditions can only be given with your own data, not a toy dataset name")
        return _Toy(data, batch_size, generator, rank, world)
    if isinstance(data, (Tensor, np.ndarray)):
        return _from_tensor(as_tensor(data, "data"), conds, batch_size, generator, rank, world)
    if conds:
        raise ValueError("labels= and cond= go with a tensor or array; a Dataset or loader yields them with x")
    indexed = isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset)
    if (indexed and hasattr(data, "__len__")) or isinstance(data, (list, tuple)):  # items x, (x, y) or dicts
        return _from_dataset(data, batch_size, generator, rank, world)
    if isinstance(data, (DataLoader, Iterable, Iterator)) or callable(data):
        return _Stream(data, rank, world)
    raise ValueError(
        "data must be a toy dataset name, a tensor or numpy array [N, ...], a Dataset, a DataLoader, "
        f"an iterator of batches or a function returning one, got {type(data).__name__}"
    )


def per_rank_batch(batch_size: int, world: int) -> int:
    """Rows per process for a global batch of `batch_size` rows (ValueError unless it divides evenly)."""
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must be divisible by the number of processes ({world})")
    return batch_size // world

