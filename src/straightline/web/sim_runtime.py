"""The simulations behind `/api/sims/...`: models loaded once, work off the event loop, results cached.

- The shipped models load once, in a background thread started with the app, so no page waits on
  torch (this module imports neither torch nor the toolkit at import time). The same thread sets
  torch to one intra-op thread: many small requests on a few cores would otherwise oversubscribe
  them. Loaded models are shared by every app in the process (tests build many apps).
- A simulation runs in a small dedicated thread pool (one worker per core), never on the event
  loop and never in the pool the other routes use. Identical requests in flight share one
  computation. Waiting computations run in fair order: first by how many computations their client
  address already had under way when they came (a client's first request goes before another's
  fifth), then cheapest first (by `course/simcost.py`'s estimate), so a learner's request is not
  stuck behind one client's heavy ones.
- Admission is bounded (`SimLimits`): a client address may have `per_client` computations of its
  own under way (more: `Busy` with status 429), and all clients together at most `queued_s`
  estimated seconds of work queued or running (more: `Busy` with status 503, except for a light
  request, which runs first anyway); both carry a Retry-After. Cached results and requests that
  join an identical computation are always served.
- Results are deterministic given their parameters (the seed is one of them), so they are cached
  as finished JSON bytes plus their gzip form, within a byte budget (LRU).
- After loading, the thread computes the course's own simulations at their chapter parameters,
  so a learner opening a chapter gets its first picture from the cache.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import gzip
import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..course.simcost import MAX_COST_S, estimate
from ..course.simparams import PARAMS, SimParams
from ..sizes import MIB

__all__ = ["Busy", "SimLimits", "SimResult", "SimRuntime", "NotReady", "course_warmups"]

log = logging.getLogger("straightline.web.sims")



class NotReady(RuntimeError):
    """The models are not loaded (yet, or at all); the message says which."""


class Busy(RuntimeError):
    """A computation refused for load: `status` 429 (this client's own limit) or 503 (the server's
    queue is full); `retry_after_s` says when to try again."""

    def __init__(self, message: str, status: int, retry_after_s: int):
        super().__init__(message)
        self.status, self.retry_after_s = status, retry_after_s


@dataclass(frozen=True)
class SimLimits:
    per_client: int = 16  # computations of one client address under way at once (a page asks for several)
    queued_s: float = 20.0  # estimated seconds of work queued or running, all clients together
    light_s: float = 0.5  # a request estimated under this is never refused for the queue (it runs first)


#: a computation estimated under this (seconds on one core) may also run in the light lane: a
#: chapter's own pictures are (particles-flow at its chapter parameters: 0.025 s), the costliest
#: requests the cap admits are not (particles-flow at its maxima: 0.4 s)
LANE_S = 0.1


@dataclass(frozen=True)
class _Job:
    key: tuple[str, str]
    name: str
    params: SimParams
    future: Future
    cost_s: float
    client: str | None
    light: bool  # estimated under LANE_S: the light lane may take it


@dataclass(frozen=True)
class SimResult:
    """One simulation's answer, ready to send."""

    body: bytes  # compact JSON
    gzipped: bytes
    etag: str
    compute_ms: float

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped)


def _finish(result: dict[str, Any], compute_ms: float) -> SimResult:
    body = json.dumps(result, separators=(",", ":"), allow_nan=False).encode()
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    return SimResult(body, gzip.compress(body, compresslevel=5, mtime=0), f'"{digest}"', compute_ms)


class _ByteLRU:
    def __init__(self, budget: int):
        self.budget, self.used = budget, 0
        self.data: OrderedDict[tuple[str, str], SimResult] = OrderedDict()

    def get(self, key: tuple[str, str]) -> SimResult | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: tuple[str, str], value: SimResult) -> None:
        if key in self.data:
            return
        self.data[key] = value
        self.used += value.size
        while self.used > self.budget and len(self.data) > 1:
            _, old = self.data.popitem(last=False)
            self.used -= old.size


class _Engine:
    """The loaded models and everything computed from them; one per weights folder per process."""

    def __init__(self, weights_dir: Path | None, *, workers: int, cache_bytes: int):
        from ..course import shipped
        from ..course.sims import Simulations

        started = time.perf_counter()
        models = shipped.load_shipped(weights_dir)
        # the bytes cache below is the cache that matters; the toolkit's own keeps a few dicts
        self.sims = Simulations(models)
        self.load_seconds = time.perf_counter() - started
        self.workers = workers
        # the pool runs any job, at a slightly lower CPU priority than pages; the light lane (one
        # thread, normal priority) only takes light jobs, so a chapter's cheap picture never waits
        # behind the costliest requests the cap admits, whoever sends them
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sims", initializer=_lower_priority)
        self.lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sims-light")
        self._lock = threading.Lock()
        self._cache = _ByteLRU(cache_bytes)
        self._inflight: dict[tuple[str, str], Future] = {}
        self._waiting: list[tuple[int, float, int, _Job]] = []  # a heap: (client's rank, cost, order, job)
        self._order = itertools.count()
        self.pending_s = 0.0  # estimated seconds of work queued or running
        self._by_client: Counter[str] = Counter()

    def cached(self, name: str, params: SimParams) -> SimResult | None:
        with self._lock:
            return self._cache.get((name, params.model_dump_json()))

    def submit(
        self, name: str, params: SimParams, *, inline: bool = False, client: str | None = None, limits: SimLimits | None = None
    ) -> Future:
        """A future of the result; identical requests in flight share one computation.

        `inline` computes in the calling thread (the warm-up) instead of the pool. With `limits`, a
        new computation is admitted only within them (else `Busy`), counted against `client`."""
        key = (name, params.model_dump_json())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                done: Future = Future()
                done.set_result(hit)
                return done
            running = self._inflight.get(key)
            if running is not None:
                return running
            cost = estimate(name, params).seconds
            if limits is not None:
                self._admit(cost, client, limits)
            job = _Job(key, name, params, Future(), cost, client, cost < LANE_S)
            self._inflight[key] = job.future
            self.pending_s += cost
            self._by_client[client or ""] += 1
            if not inline:
                rank = self._by_client[client or ""] - 1  # this client's computations under way before it
                heapq.heappush(self._waiting, (rank, cost, next(self._order), job))
        if inline:
            self._compute(job)
        else:
            self.executor.submit(self._run_next)  # one pool task per job: no job is ever stranded
            if job.light:
                self.lane.submit(self._run_next_light)
        return job.future

    def _admit(self, cost: float, client: str | None, limits: SimLimits) -> None:
        if client is not None and self._by_client[client] >= limits.per_client:
            raise Busy(
                f"you already have {limits.per_client} simulations computing; wait for them to finish",
                429, max(1, math.ceil(cost)),
            )
        if cost >= limits.light_s and self.pending_s > 0 and self.pending_s + cost > limits.queued_s:
            raise Busy(
                f"the server has about {self.pending_s:.0f} s of simulations queued; try again shortly",
                503, max(1, math.ceil(self.pending_s / self.workers)),
            )

    def _run_next(self) -> None:
        """One pool task per queued job; each runs the first job in fair order when it starts
        (nothing, if the light lane already took every waiting job)."""
        with self._lock:
            if not self._waiting:
                return
            *_, job = heapq.heappop(self._waiting)
        self._compute(job)

    def _run_next_light(self) -> None:
        """The light lane's task: the first light job in fair order, if one is still waiting."""
        with self._lock:
            entry = min((e for e in self._waiting if e[-1].light), default=None)
            if entry is None:
                return
            self._waiting.remove(entry)
            heapq.heapify(self._waiting)
        self._compute(entry[-1])

    def _compute(self, job: _Job) -> None:
        value: SimResult | None = None
        try:
            started = time.perf_counter()
            result = self.sims.run(job.name, job.params)
            value = _finish(result, (time.perf_counter() - started) * 1000)
        except BaseException as exc:  # the waiting request reports it
            job.future.set_exception(exc)
        finally:
            with self._lock:
                if value is not None:
                    self._cache.put(job.key, value)
                self._inflight.pop(job.key, None)
                self.pending_s = max(0.0, self.pending_s - job.cost_s)
                self._by_client[job.client or ""] -= 1
                if self._by_client[job.client or ""] <= 0:
                    del self._by_client[job.client or ""]
        if value is not None:
            job.future.set_result(value)


def _lower_priority() -> None:
    """A pool thread's CPU priority, a little below the event loop's (Linux: per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)
    except (AttributeError, OSError):
        pass


_ENGINES: dict[str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_for(weights_dir: Path | None, *, workers: int, cache_bytes: int) -> _Engine:
    key = str(weights_dir)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = _Engine(weights_dir, workers=workers, cache_bytes=cache_bytes)
        return engine


def course_warmups(course) -> list[tuple[str, dict[str, Any]]]:
    """(simulation, parameters) of every simulation and Break-It lab in the course, as the pages
    first ask for them."""
    out = []
    for element in course.elements.values():
        name = element.fields.get("sim") if element.type == "simulation" else element.fields.get("lab")
        if element.type in ("simulation", "break-it") and name in PARAMS:
            params = element.fields.get("params") or {}
            if (name, params) not in out:
                out.append((name, params))
    return out


def _quietly(fn):
    def run() -> None:
        try:
            fn()
        except Exception as exc:  # the first job retries, and reports what fails
            log.warning("starting the live-training worker failed: %s", exc)

    return run


class SimRuntime:
    """What the simulation routes use: `await result(name, params)`, and `live` (live training).

    `start()` (at app start-up) loads the models in a background thread; routes `await ready()`.
    """

    def __init__(
        self,
        *,
        weights_dir: Path | None = None,
        workers: int | None = None,
        cache_bytes: int = 256 * MIB,
        live_max_jobs: int = 2,
        torch_threads: int | None = 1,
        warmups: Iterable[tuple[str, dict[str, Any]]] = (),
        prestart_live: bool = False,
        limits: SimLimits = SimLimits(),
    ):
        self.weights_dir = weights_dir
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.cache_bytes = cache_bytes
        self.live_max_jobs = live_max_jobs
        self.torch_threads = torch_threads
        self.warmups = list(warmups)
        self.prestart_live = prestart_live
        self.limits = limits
        self.max_cost_s = MAX_COST_S  # a request estimated above this is refused (422)
        self.engine: _Engine | None = None
        self.live = None  # LiveTraining, once loaded
        self.error: str | None = None
        self._loaded = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []  # wait_ready's, woken by _load
        self._waiters_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._warmed = threading.Event()

    @classmethod
    def for_course(cls, course, **options) -> "SimRuntime":
        """A runtime that warms the course's simulations and, if the course trains live, starts the
        training worker ahead of the first learner."""
        live = any(e.type == "simulation" and e.fields.get("sim") == "live-training" for e in course.elements.values())
        return cls(warmups=course_warmups(course), prestart_live=live, **options)

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            # not a daemon: the interpreter waits for the computation under way at exit instead of
            # tearing torch down beneath it (close() stops the warm-up between computations)
            self._thread = threading.Thread(target=self._load, name="sims-loader", daemon=False)
            self._thread.start()

    def close(self, wait_s: float = 5.0) -> None:
        """Stop warming up and cancel live training (waiting a little for the jobs to stop)."""
        self._closed.set()
        if self.live is not None:
            self.live.cancel_all()
            self.live.wait_all(wait_s)

    def _load(self) -> None:
        try:
            import torch

            if self.torch_threads:
                torch.set_num_threads(self.torch_threads)
            from ..course.live import LiveTraining, shared_worker

            self.engine = _engine_for(self.weights_dir, workers=self.workers, cache_bytes=self.cache_bytes)
            # live training runs in a worker process (see course/live.py), started once the warm-up is
            # done by a thread made here at normal priority (the warm-up lowers its own thread's), so
            # the first job does not wait for it
            self.live = LiveTraining(max_jobs=self.live_max_jobs, isolate=True)
            if self.prestart_live:
                threading.Thread(target=self._prestart_live, args=(shared_worker,), name="live-worker-start", daemon=True).start()
        except Exception as exc:  # reported by every simulation request
            self.error = f"the simulation models could not be loaded: {exc}"
            log.error(self.error)
        finally:
            self._mark_loaded()
        if self.engine is not None:
            self._warm()

    def _prestart_live(self, shared_worker) -> None:
        # after the warm-up: a server that lives only seconds (tests) never pays for the process
        self._warmed.wait()
        if not self._closed.is_set():
            _quietly(shared_worker().start)()

    def _warm(self) -> None:
        """Compute the course's simulations at their chapter parameters, one at a time, at a low
        CPU priority (Linux lets a thread lower its own), so learners' requests come first."""
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
        except (AttributeError, OSError):
            pass
        try:
            for name, params in self.warmups:
                if self._closed.is_set():
                    return
                try:
                    self.engine.submit(name, PARAMS[name].model_validate(params), inline=True).result()
                except Exception as exc:  # a bad chapter parameter shows up when the page asks for it
                    log.warning("warming %s %s failed: %s", name, params, exc)
        finally:
            self._warmed.set()

    def _when_loaded(self) -> asyncio.Future:
        """A future on the running loop, resolved (from the loader thread) once loading has ended."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._waiters_lock:
            if self._loaded.is_set():
                future.set_result(None)
            else:
                self._waiters.append((loop, future))
        return future

    def _mark_loaded(self) -> None:
        """Loading has ended (well or not): wake every `wait_ready`, each on its own loop."""
        with self._waiters_lock:
            self._loaded.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop has closed: nobody waits there any more
                pass

    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self.engine is not None

    @property
    def state(self) -> str:
        """idle (not started), loading (the models), warming (computing the course's own
        simulations), ready, or error."""
        if self._thread is None:
            return "idle"
        if not self._loaded.is_set():
            return "loading"
        if self.engine is None:
            return "error"
        return "ready" if self._warmed.is_set() else "warming"

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Return once the models are loaded; NotReady if loading failed or takes too long."""
        if not self._loaded.is_set():
            self.start()
            try:
                await asyncio.wait_for(self._when_loaded(), timeout)
            except TimeoutError:
                raise NotReady("the simulation models are still loading; try again in a moment") from None
        if self.engine is None:
            raise NotReady(self.error or "the simulation models are not available")

    # --- work ----------------------------------------------------------------------------------

    async def result(self, name: str, params: SimParams, client: str | None = None) -> SimResult:
        """The result, from the cache or computed within `limits` for `client` (raises Busy)."""
        await self.wait_ready()
        hit = self.engine.cached(name, params)
        if hit is not None:
            return hit
        return await asyncio.wrap_future(self.engine.submit(name, params, client=client, limits=self.limits))


def _resolve(future: asyncio.Future) -> None:
    if not future.done():  # a waiter that timed out has cancelled its future
        future.set_result(None)
