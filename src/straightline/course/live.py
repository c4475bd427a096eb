"""Live training for the Chapter 4 simulation: a real 2-D model trains while the learner watches.

`LiveTraining` runs each job in its own thread and publishes snapshots (loss curve, velocity field,
samples) that the web layer streams as Server-Sent Events. It is bounded: at most one job per
learner (starting another cancels the first), a global cap on concurrent jobs, and a step cap;
a job is cancelled when its stream goes away.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

import straightline as sl

from .sims import encode

__all__ = ["LiveParams", "LiveTraining", "Job", "Busy"]

MAX_POINTS = 2000


class LiveParams(BaseModel):
    """What the learner asks to train on."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: str | None = Field("moons", description="a toy dataset name, or null when points are given")
    points: list[tuple[float, float]] | None = Field(
        None, description=f"points drawn by the learner, 8 to {MAX_POINTS}, coordinates in [-4, 4]"
    )
    steps: int = Field(1500, ge=10, le=5000, description="training steps")
    snapshot_every: int = Field(50, ge=10, le=1000, description="steps between streamed snapshots")
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("dataset")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in sl.data.toy_names():
            raise ValueError(f"unknown dataset {v!r}; accepted: {', '.join(sl.data.toy_names())}")
        return v

    @field_validator("points")
    @classmethod
    def _bounded(cls, v: list | None) -> list | None:
        if v is None:
            return v
        if not 8 <= len(v) <= MAX_POINTS:
            raise ValueError(f"points must hold 8 to {MAX_POINTS} points, got {len(v)}")
        if any(abs(c) > 4 for p in v for c in p):
            raise ValueError("every point coordinate must lie in [-4, 4]")
        return v


class Busy(RuntimeError):
    """Too many jobs are running; try again shortly."""


@dataclass
class Job:
    id: str
    learner: str
    params: LiveParams
    events: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=256))
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    steps_done: int = 0
    started: float = field(default_factory=time.perf_counter)

    def cancel(self) -> None:
        self.cancelled.set()

    def publish(self, event: dict[str, Any]) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:  # a reader that does not keep up loses old snapshots, not the job
            try:
                self.events.get_nowait()
            except queue.Empty:
                pass
            self.events.put_nowait(event)


class LiveTraining:
    def __init__(self, *, max_jobs: int = 2, grid: int = 15, samples: int = 300):
        self.max_jobs, self.grid, self.samples = max_jobs, grid, samples
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}  # job id -> job
        self._by_learner: dict[str, Job] = {}

    def running(self) -> int:
        with self._lock:
            return sum(not j.done.is_set() for j in self._jobs.values())

    def get(self, job_id: str, learner: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.learner == learner else None

    def start(self, learner: str, params: LiveParams) -> Job:
        """Start a job for `learner`, cancelling the learner's previous one; Busy at the global cap."""
        with self._lock:
            previous = self._by_learner.get(learner)
            if previous is not None:
                previous.cancel()
            active = sum(not j.done.is_set() and j is not previous for j in self._jobs.values())
            if active >= self.max_jobs:
                raise Busy(f"{active} live-training jobs are running (the limit is {self.max_jobs}); try again shortly")
            job = Job(id=uuid.uuid4().hex, learner=learner, params=params)
            self._jobs[job.id] = job
            self._by_learner[learner] = job
            for old_id in [k for k, j in self._jobs.items() if j.done.is_set()]:
                del self._jobs[old_id]
        threading.Thread(target=self._run, args=(job,), name=f"live-{job.id[:8]}", daemon=True).start()
        return job

    def _data(self, p: LiveParams) -> str | torch.Tensor:
        if p.points:
            return torch.tensor(p.points, dtype=torch.float32)  # [N, 2]
        return p.dataset or "moons"

    def _run(self, job: Job) -> None:
        p = job.params
        try:
            torch.manual_seed(p.seed)
            model = sl.models.MLP(dim=2, hidden=64, depth=3)
            axis = torch.linspace(-3.5, 3.5, self.grid)
            gx, gy = torch.meshgrid(axis, axis, indexing="xy")
            grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # [grid^2, 2]
            noise = torch.randn(self.samples, 2, generator=torch.Generator().manual_seed(p.seed))
            losses: list[float] = []

            def snapshot(step: int, model: torch.nn.Module) -> None:
                model.eval()
                with torch.no_grad():
                    v = model(grid, torch.full((len(grid),), 0.5))
                    x = sl.sample(model, noise, steps=20)
                model.train()
                recent = losses[-p.snapshot_every:]
                job.publish({
                    "type": "snapshot", "step": step + 1, "steps": p.steps,
                    "loss": round(sum(recent) / len(recent), 4),
                    "elapsed": round(time.perf_counter() - job.started, 2),
                    "field": encode(v.clamp(-30, 30)), "grid": encode(grid), "samples": encode(x.clamp(-30, 30)),
                })

            def callback(step: int, loss: float, model: torch.nn.Module) -> bool:
                losses.append(loss)
                job.steps_done = step + 1
                if (step + 1) % p.snapshot_every == 0 or step + 1 == p.steps:
                    snapshot(step, model)
                return job.cancelled.is_set()

            sl.train(model, self._data(p), steps=p.steps, batch_size=256, lr=2e-3, ema=None, seed=p.seed,
                     progress=False, callback=callback)
            job.publish({"type": "cancelled" if job.cancelled.is_set() else "done", "step": job.steps_done,
                         "elapsed": round(time.perf_counter() - job.started, 2)})
        except Exception as exc:  # report, never kill the server
            job.publish({"type": "error", "message": f"training failed: {exc}"})
        finally:
            job.done.set()
