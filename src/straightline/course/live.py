"""Live training for the Chapter 4 simulation: a real 2-D model trains while the learner watches.

`LiveTraining` runs each job in its own thread and publishes snapshots (loss curve, velocity field,
samples) that the web layer streams as Server-Sent Events. It is bounded: at most one job per
learner (starting another cancels the first), a global cap on concurrent jobs, and a step cap;
a job is cancelled when its stream goes away.

With `isolate=True` (what the web app uses) the jobs' threads live in one separate worker process
(`LiveWorker`, shared by the whole server process, started on demand or ahead with `prestart`):
training is Python-heavy, and in the server's process it would compete for the interpreter lock
with the event loop, so either the training or the pages would crawl under load. The worker sends
each event back through a pipe; cancelling a job sends it a message.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch

import straightline as sl

from .simparams import MAX_POINTS, TOY_DATASETS, LiveParams  # noqa: F401 - re-exported
from .sims import encode

__all__ = ["LiveParams", "LiveTraining", "LiveWorker", "Job", "Busy", "shared_worker"]

TERMINAL = ("done", "cancelled", "error")
CONTROLS = ("pause", "step", "resume")
BATCH_SIZE = 256  # every training step's minibatch, a shown step's too
PAUSE_LIMIT_S = 900.0  # a job paused this long is cancelled (it holds one of the few job slots)
#: a finished run whose samples lie off the data (mean distance to the nearest data point) by more
#: than this many times two data samples do (their 90 % point) is reported as not converged;
#: Gaussian noise scores 2.3 (spirals) to 13 (eight Gaussians); at the default 1500 steps the
#: checkerboard scores 2.04 and the spirals 2.30 (bench/results/live_convergence.txt)
CONVERGED_RATIO = 2.0
#: the setting that fixes a run that has not converged: the most steps the page offers; measured
#: (bench/results/live_convergence.txt) to bring the checkerboard from not converged at 1500 steps
#: to converged (2.04 -> 1.41), but not the spirals (2.30 -> 2.10)
FIX_STEPS = 5000
FIXED_BY_STEPS = ("two_clusters", "8gaussians", "moons", "checkerboard")


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
    outcome: str | None = None  # done | cancelled | error, once the job has ended
    snapshots: int = 0
    on_cancel: Any = None  # tells a worker process (isolated jobs)
    on_control: Any = None  # passes pause / step / resume to a worker process (isolated jobs)
    commands: queue.Queue = field(default_factory=queue.Queue)  # pause / step / resume, read between steps
    paused: bool = False

    @property
    def state(self) -> str:
        """running, or how the job ended (done, cancelled, error)."""
        return self.outcome if self.done.is_set() and self.outcome else "running"

    def cancel(self) -> None:
        self.cancelled.set()
        if self.on_cancel is not None and not self.done.is_set():
            self.on_cancel(self.id)

    def control(self, command: str) -> None:
        """Step mode: "pause" after the current minibatch, "step" one shown minibatch, "resume"."""
        if command not in CONTROLS:
            raise ValueError(f"command must be one of {', '.join(CONTROLS)}, got {command!r}")
        if self.on_control is not None:
            self.on_control(self.id, command)
        else:
            self.commands.put(command)

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
    def __init__(self, *, max_jobs: int = 2, grid: int = 15, samples: int = 300, isolate: bool = False):
        self.max_jobs, self.grid, self.samples, self.isolate = max_jobs, grid, samples, isolate
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}  # job id -> job
        self._by_learner: dict[str, Job] = {}

    def running(self) -> int:
        with self._lock:
            return sum(not j.done.is_set() for j in self._jobs.values())

    def cancel_all(self) -> None:
        """Cancel every job (the app is shutting down)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()

    def wait_all(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds in all for every job to end; whether they all did."""
        deadline = time.monotonic() + timeout
        with self._lock:
            jobs = list(self._jobs.values())
        return all(job.done.wait(max(0.0, deadline - time.monotonic())) for job in jobs)

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
        if self.isolate:
            shared_worker().submit(job, self.grid, self.samples)
        else:
            threading.Thread(target=run_job, args=(job, self.grid, self.samples), name=f"live-{job.id[:8]}", daemon=True).start()
        return job


def _data(p: LiveParams) -> str | torch.Tensor:
    if p.points:
        return torch.tensor(p.points, dtype=torch.float32)  # [N, 2]
    return p.dataset or "moons"


def run_job(job: Job, grid_size: int = 15, samples: int = 300) -> None:
    """Train the job's model, publishing snapshots, then done / cancelled / error; never raises."""
    p = job.params
    try:
        torch.manual_seed(p.seed)
        model = sl.models.MLP(dim=2, hidden=64, depth=3)
        axis = torch.linspace(-3.5, 3.5, grid_size)
        gx, gy = torch.meshgrid(axis, axis, indexing="xy")
        grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # [grid^2, 2]
        noise = torch.randn(samples, 2, generator=torch.Generator().manual_seed(p.seed))
        data = _data(p)
        reference = data[:samples] if isinstance(data, torch.Tensor) else sl.data.toy(data, samples, seed=p.seed + 1)
        losses: list[float] = []

        def snapshot(step: int, model: torch.nn.Module) -> None:
            model.eval()
            with torch.no_grad():
                v = model(grid, torch.full((len(grid),), 0.5))
                x = sl.sample(model, noise, steps=20)
            model.train()
            recent = losses[-p.snapshot_every:]
            event = {
                "type": "snapshot", "step": step + 1, "steps": p.steps,
                "loss": round(sum(recent) / len(recent), 4),
                "losses": [round(value, 4) for value in recent],  # every step's batch loss since the last snapshot
                "elapsed": round(time.perf_counter() - job.started, 2),
                "field": encode(v.clamp(-30, 30)), "grid": encode(grid), "samples": encode(x.clamp(-30, 30)),
            }
            if not job.snapshots:  # the first snapshot also carries what the model is fitting
                event["data"] = encode(reference)
            job.snapshots += 1
            job.publish(event)

        shown = torch.Generator().manual_seed(p.seed + 7)  # the minibatches of step mode

        def callback(state: sl.TrainState) -> bool:
            step = state.step
            losses.append(state.loss)
            job.steps_done = step + 1
            if (step + 1) % p.snapshot_every == 0 or step + 1 == p.steps:
                snapshot(step, state.model)
            obey(job, lambda: shown_step(state, data, shown, job.steps_done))
            return job.cancelled.is_set()

        sl.train(model, data, steps=p.steps, batch_size=BATCH_SIZE, lr=2e-3, ema=None, coupling="independent", seed=p.seed,
                 progress=False, callback=callback)
        job.outcome = "cancelled" if job.cancelled.is_set() else "done"
        end = {"type": job.outcome, "step": job.steps_done, "elapsed": round(time.perf_counter() - job.started, 2)}
        if job.outcome == "done":
            end["quality"] = quality(p, model, noise, reference)
        job.publish(end)
    except Exception as exc:  # report, never kill the server
        job.outcome = "error"
        job.publish({"type": "error", "message": f"training failed: {exc}"})
    finally:
        job.done.set()


# --- step mode and the end-of-run check ------------------------------------------------------------

def obey(job: Any, step: Any) -> None:
    """Between two training steps: apply pause / step / resume commands; while paused, wait (a
    "step" publishes `step()`'s event); returns when running again, or cancelled, or paused too long."""
    since = time.monotonic()
    while not job.cancelled.is_set():
        try:
            command = job.commands.get(timeout=0.1) if job.paused else job.commands.get_nowait()
        except queue.Empty:
            if not job.paused:
                return
            if time.monotonic() - since > PAUSE_LIMIT_S:
                job.cancelled.set()
            continue
        if command == "pause" and not job.paused:
            job.paused = True
            job.publish({"type": "paused", "step": job.steps_done})
        elif command == "resume" and job.paused:
            job.paused = False
            job.publish({"type": "resumed", "step": job.steps_done})
            return
        elif command == "step" and job.paused:
            since = time.monotonic()
            job.publish(step())


def shown_step(state: sl.TrainState, data: str | torch.Tensor, g: torch.Generator, step: int) -> dict[str, Any]:
    """One minibatch trained in the open: its pairs, times, x_t, targets u_t, the model's v and
    each pair's loss before the update (the mean of these is the batch's CFM loss), then one
    optimizer step on exactly this batch, and the batch's loss after it."""
    model, optimizer = state.model, state.optimizer
    if isinstance(data, torch.Tensor):
        x_1 = data[torch.randint(len(data), (BATCH_SIZE,), generator=g)]  # [B, 2]
    else:
        x_1 = sl.data.toy(data, BATCH_SIZE, seed=int(torch.randint(2**31 - 1, (1,), generator=g)))  # [B, 2]
    x_0 = torch.randn(BATCH_SIZE, 2, generator=g)  # [B, 2]
    t = torch.rand(BATCH_SIZE, generator=g)  # [B]
    path = sl.LinearPath().sample(x_0, x_1, t)  # x_t = (1 - t) x_0 + t x_1, u_t = x_1 - x_0
    v = model(path.x_t, t)  # [B, 2]
    per_pair = ((v - path.u_t) ** 2).mean(dim=1)  # [B]: the squared error, averaged over the 2 coordinates
    optimizer.zero_grad(set_to_none=True)
    per_pair.mean().backward()
    optimizer.step()
    with torch.no_grad():
        after = float(((model(path.x_t, t) - path.u_t) ** 2).mean())
    return {
        "type": "batch", "step": step, "batch": BATCH_SIZE,
        "x_0": encode(x_0), "x_1": encode(x_1), "t": [round(float(ti), 4) for ti in t],
        "x_t": encode(path.x_t), "u_t": encode(path.u_t.clamp(-30, 30)), "v": encode(v.detach().clamp(-30, 30)),
        "pair_loss": encode(per_pair.detach().clamp(max=30)),
        "loss": round(float(per_pair.detach().mean()), 4), "loss_after": round(after, 4),
    }


def off_data(x: torch.Tensor, reference: torch.Tensor) -> float:
    """The mean distance from each point of x [N, 2] to its nearest reference point [M, 2]."""
    return float(torch.cdist(x, reference).min(dim=1).values.mean())


def _off_data_floor(dataset: str, n: int, repeats: int = 10) -> tuple[float, float]:
    """off_data between two fresh n-samples of the dataset: mean and 90 % point over `repeats` pairs."""
    values = sorted(off_data(sl.data.toy(dataset, n, seed=30_000 + 2 * r), sl.data.toy(dataset, n, seed=30_001 + 2 * r)) for r in range(repeats))
    return sum(values) / repeats, values[int(0.9 * (repeats - 1))]


def quality(p: LiveParams, model: torch.nn.Module, noise: torch.Tensor, reference: torch.Tensor) -> dict[str, Any]:
    """The finished model's samples against the data: W2, and how far the samples lie off the data
    (mean distance to the nearest data point; W2 cannot tell a Gaussian from two spirals at this
    size). For a named dataset, the same off-data distance between two samples of the data, and
    whether the run converged (off-data <= CONVERGED_RATIO x that floor's 90 % point)."""
    with torch.no_grad():
        x = sl.sample(model, noise, steps=20).clamp(-30, 30)  # [samples, 2]
    out: dict[str, Any] = {"w2": round(sl.metrics.w2(x, reference), 4), "off_data": round(off_data(x, reference), 4), "n": len(noise)}
    if p.points is None:
        mean, high = _off_data_floor(p.dataset or "moons", len(noise))
        converged = out["off_data"] <= CONVERGED_RATIO * high
        out.update(floor=round(mean, 4), floor_high=round(high, 4), converged=converged)
        if not converged:
            fixed = p.steps < FIX_STEPS and (p.dataset or "moons") in FIXED_BY_STEPS
            out["fix"] = {"setting": "steps", "value": FIX_STEPS} if fixed else None
    return out


# --- the worker process (isolate=True) ------------------------------------------------------------

class _RemoteJob:
    """A job as the worker process sees it: events go back through the pipe."""

    def __init__(self, job_id: str, params: LiveParams, send):
        self.id, self.params, self._send = job_id, params, send
        self.cancelled, self.done = threading.Event(), threading.Event()
        self.steps_done, self.snapshots, self.outcome = 0, 0, None
        self.commands: queue.Queue = queue.Queue()
        self.paused = False
        self.started = time.perf_counter()

    def publish(self, event: dict[str, Any]) -> None:
        self._send((self.id, event, self.steps_done))


def _worker_main(conn, torch_threads: int) -> None:  # pragma: no cover - runs in the worker process
    """The worker process: run each job in a thread, send its events back, obey cancel/stop."""
    torch.set_num_threads(torch_threads)
    _ = (sl.train, sl.sample, sl.models.MLP, sl.data.toy)  # import what a job uses before saying ready
    lock = threading.Lock()
    jobs: dict[str, _RemoteJob] = {}

    def send(message) -> None:
        with lock:
            try:
                conn.send(message)
            except (OSError, ValueError):
                pass  # the server went away: the loop below ends the process

    def run(job: _RemoteJob, grid: int, samples: int) -> None:
        run_job(job, grid, samples)
        jobs.pop(job.id, None)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            os._exit(0)  # the server is gone; never outlive it
        kind = message[0]
        if kind == "start":
            _, job_id, params, grid, samples = message
            job = _RemoteJob(job_id, LiveParams.model_validate(params), send)
            jobs[job_id] = job
            threading.Thread(target=run, args=(job, grid, samples), name=f"live-{job_id[:8]}", daemon=True).start()
        elif kind == "cancel":
            job = jobs.get(message[1])
            if job is not None:
                job.cancelled.set()
        elif kind == "control":
            job = jobs.get(message[1])
            if job is not None:
                job.commands.put(message[2])
        elif kind == "ping":
            send(("", {"type": "pong"}, 0))
        elif kind == "stop":
            for job in list(jobs.values()):
                job.cancelled.set()
            deadline = time.monotonic() + 2
            while jobs and time.monotonic() < deadline:
                time.sleep(0.02)
            os._exit(0)


class LiveWorker:
    """One process that trains the live jobs (each in its own thread there), spawned fresh (not
    forked from a server full of threads). Events come back through a pipe to a reader thread,
    which publishes them on the job. If the process dies, its jobs end with an error event and the
    next job starts a new process."""

    def __init__(self, torch_threads: int = 1):
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._conn = None
        self._process = None
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the process (if not running) and wait until it answers."""
        with self._lock:
            if self._process is not None and self._process.is_alive():
                return
            context = multiprocessing.get_context("spawn")
            conn, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child, self.torch_threads), name="straightline-live", daemon=True)
            process.start()
            child.close()
            self._conn, self._process = conn, process
            self._ready.clear()
            threading.Thread(target=self._read, args=(conn,), name="live-worker-reader", daemon=True).start()
            conn.send(("ping",))
        if not self._ready.wait(120):
            raise RuntimeError("the live-training worker process did not start within 120 s")

    def submit(self, job: Job, grid: int, samples: int) -> None:
        try:
            self.start()
            with self._lock:
                self._jobs[job.id] = job
                job.on_cancel = self._cancel
                job.on_control = self._control
                self._conn.send(("start", job.id, job.params.model_dump(), grid, samples))
        except Exception as exc:  # report on the job, like a failure inside it
            self._end(job, {"type": "error", "message": f"training could not start: {exc}"})

    def _cancel(self, job_id: str) -> None:
        with self._lock:
            if self._conn is not None and job_id in self._jobs:
                try:
                    self._conn.send(("cancel", job_id))
                except (OSError, ValueError):
                    pass

    def _control(self, job_id: str, command: str) -> None:
        with self._lock:
            if self._conn is not None and job_id in self._jobs:
                try:
                    self._conn.send(("control", job_id, command))
                except (OSError, ValueError):
                    pass

    def _end(self, job: Job, event: dict[str, Any]) -> None:
        job.outcome = event["type"]
        job.publish(event)
        job.done.set()

    def _read(self, conn) -> None:
        while True:
            try:
                job_id, event, steps_done = conn.recv()
            except (EOFError, OSError):
                break
            if event["type"] == "pong":
                self._ready.set()
                continue
            with self._lock:
                job = self._jobs.get(job_id)
                if job is not None and event["type"] in TERMINAL:
                    del self._jobs[job_id]
            if job is None:
                continue
            job.steps_done = steps_done
            if event["type"] in TERMINAL:
                self._end(job, event)
            else:
                job.publish(event)
        with self._lock:  # the process is gone: its jobs end, the next job starts a new one
            orphans = list(self._jobs.values())
            self._jobs.clear()
            if self._conn is conn:
                self._conn, self._process = None, None
        for job in orphans:
            self._end(job, {"type": "error", "message": "the training process stopped"})

    def stop(self) -> None:
        with self._lock:
            conn, process = self._conn, self._process
        if conn is None:
            return
        try:
            conn.send(("stop",))
        except (OSError, ValueError):
            pass
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()


_WORKER: LiveWorker | None = None
_WORKER_LOCK = threading.Lock()


def shared_worker() -> LiveWorker:
    """The process's live-training worker (one per server process, whichever app asks)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = LiveWorker()
        return _WORKER
