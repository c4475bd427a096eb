"""The grading service: a queue with a concurrency limit in front of the sandboxed workers.

    grader = Grader(GraderSettings())          # or GraderSettings(unsafe_local=True)
    grader.start()                              # optional: warms the pool now
    result = await grader.submit(learner_id, "cfm_loss", code)    # from any asyncio loop
    result = grader.grade("cfm_loss", code)                      # blocking, for scripts / CLI
    run = await grader.run(learner_id, "euler_sample", code, steps=20)   # "run it in the simulation"
    grader.close()

All grading machinery runs on the grader's own thread and event loop: workers are spawned, fed
and read there, and the trusted checks run there. `submit` only schedules work on that loop and
awaits a future, so a web server's event loop never blocks on grading; the heavy work (running the
learner's code) happens in the sandboxed subprocesses. (Spawning from one long-lived thread also
matters: `--die-with-parent` ties each sandbox to the thread that started it.)

Queueing policy:
- at most `max_concurrent` submissions run at once; up to `max_waiting` more wait in FIFO order;
  beyond that `submit` raises `QueueFull` at once;
- each learner has at most one job in the grader (running or waiting): a second one while
  the first is not finished raises `LearnerBusy` at once. Refusing (rather than queueing) keeps a
  learner who clicks Submit repeatedly from filling the queue, and the page can say "your previous
  submission is still being graded".
- a learner id costs nothing (a request without a cookie is a new learner), so the callers also
  say which `client` (network address) a job comes from: one client has at most `max_per_client`
  jobs in the grader (more raise `ClientBusy`) and runs at most `client_slots` at once, so a flood
  from one address never holds every slot, whatever learner ids it sends;
- cancelling the awaiting coroutine cancels the grading and kills its worker.
- a simulation job (`run`, see `runs.py`) has its own slots (`run_slots`) and queue
  (`run_waiting`): a run that spins for its whole limit never delays a submission. It runs in the
  same kind of sandboxed worker, with a longer wall-clock and CPU limit (`run_timeout_s`,
  `run_cpu_seconds`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .catalog import check_exercise
from .fork_server import ForkServer
from .pool import WarmPool
from .protocol import encode_job
from .results import GradeResult
from .sandbox import Availability, check_availability
from .settings import GraderSettings
from .worker_handle import InfrastructureError, RunOutcome

if TYPE_CHECKING:
    from .runs import RunResult

# The exercises, the verdict and the simulation runs need torch: they are imported where they are
# used, on the grader's thread, so that creating a Grader (as the web app does at start-up) is cheap.

__all__ = [
    "ClientBusy", "Grader", "GraderUnavailable", "LearnerBusy", "QueueFull", "SubmissionRefused", "SubmissionTooLarge",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class SubmissionRefused(Exception):
    """The submission was not graded (and is not an attempt); `message` says why, for the learner."""

    reason = "refused"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class GraderUnavailable(SubmissionRefused):
    """No sandbox here (bubblewrap missing, ...): grading is disabled."""

    reason = "unavailable"


class LearnerBusy(SubmissionRefused):
    """This learner already has a submission being graded."""

    reason = "busy"


class ClientBusy(SubmissionRefused):
    """This client address already has as many jobs in the grader as it may."""

    reason = "client_busy"


class QueueFull(SubmissionRefused):
    """Too many submissions waiting; try again shortly."""

    reason = "queue_full"


class SubmissionTooLarge(SubmissionRefused):
    """The code is larger than `max_code_bytes`."""

    reason = "too_large"


class Grader:
    """Grades Build-It submissions in sandboxed workers. Thread-safe; one per process is enough."""

    def __init__(self, settings: GraderSettings | None = None):
        self.settings = settings or GraderSettings()
        self._availability = check_availability(self.settings)
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._pending = {"grade": 0, "run": 0}
        self._clients: dict[str, int] = {}  # jobs in the grader per client address
        self._client_slots: dict[tuple[str, bool], asyncio.Semaphore] = {}  # (client, simulation): on the grader's loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: WarmPool | None = None
        self._fork_server: ForkServer | None = None
        self._slots: asyncio.Semaphore | None = None
        self._run_slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()  # gradings in flight (on the grader's loop)
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once `close()` was called (a closed grader cannot start again; make a new one)."""
        return self._closed

    def availability(self) -> Availability:
        """Whether grading works here; `message` is what to show when it does not (or the unsafe warning)."""
        return self._availability

    @property
    def fork_server(self) -> ForkServer | None:
        """The fork server when `settings.fork_server` asked for one (once started), else None.

        `fork_server.active`: children are being forked; `fork_server.unavailable`: why the grader
        uses a sandbox per worker instead.
        """
        return self._fork_server

    def start(self) -> "Grader":
        """Start the grader's thread and warm the pool (also done lazily by the first submission)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this Grader is closed")
            if self._loop is not None:
                return self
            ready = threading.Event()
            self._thread = threading.Thread(target=self._run_loop, args=(ready,), name="straightline-grader", daemon=True)
            self._thread.start()
            ready.wait()
        if self._availability.ok:
            self._call(self._fill())
        return self

    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._slots = asyncio.Semaphore(self.settings.max_concurrent)
        self._run_slots = asyncio.Semaphore(self.settings.run_slots)
        if self.settings.fork_server and self._availability.ok:
            self._fork_server = ForkServer(self.settings, self._availability)
            if self._fork_server.unavailable:
                log.warning("grading in a sandbox per worker: %s", self._fork_server.unavailable)
        start = self._fork_server.start_worker if self._fork_server is not None else None
        self._pool = WarmPool(self.settings, self._availability, start)
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _fill(self) -> None:
        assert self._pool is not None
        self._pool.fill()

    def _call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def close(self) -> None:
        """Kill every worker and stop the grader's thread. Submissions in flight get cancelled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()  # each kills its own worker on the way out
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._pool is not None:
                await self._pool.close()
            if self._fork_server is not None:
                await self._fork_server.close()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=30)
        except Exception:  # noqa: BLE001 - closing: log and go on
            log.exception("grader shutdown")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)

    def __enter__(self) -> "Grader":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submissions -----------------------------------------------------------------------

    def _admit(self, learner_id: str, exercise: str, code: str, client: str | None = None, kind: str = "grade") -> None:
        """Refusals happen here, synchronously, before anything is queued."""
        check_exercise(exercise)  # UnknownExercise names the accepted ones
        if not self._availability.ok:
            raise GraderUnavailable(self._availability.message)
        size = len(code.encode("utf-8", errors="replace"))
        if size > self.settings.max_code_bytes:
            raise SubmissionTooLarge(
                f"Your code is {size} bytes; the grader accepts at most {self.settings.max_code_bytes} bytes."
            )
        with self._lock:
            if self._closed:
                raise GraderUnavailable("The grader is shutting down.")
            if learner_id in self._busy:
                raise LearnerBusy("Your previous submission is still being graded; wait for its result, then submit again.")
            if client is not None and self._clients.get(client, 0) >= self.settings.max_per_client:
                raise ClientBusy(
                    f"Your address already has {self.settings.max_per_client} submissions or runs being graded; "
                    "please try again when one has finished."
                )
            self._check_queue(kind)
            self._busy.add(learner_id)
            self._pending[kind] += 1
            if client is not None:
                self._clients[client] = self._clients.get(client, 0) + 1

    def _check_queue(self, kind: str) -> None:
        s = self.settings
        if kind == "grade" and self._pending["grade"] >= s.max_concurrent + s.max_waiting:
            raise QueueFull("The grader is busy with other submissions; please submit again in a few seconds.")
        if kind == "run" and self._pending["run"] >= s.run_slots + s.run_waiting:
            raise QueueFull("The simulation runs are busy; please run yours again in a few seconds.")

    def _release(self, learner_id: str, client: str | None = None, kind: str = "grade") -> None:
        with self._lock:
            self._busy.discard(learner_id)
            self._pending[kind] -= 1
            if client is not None:
                self._clients[client] -= 1
                if self._clients[client] == 0:
                    del self._clients[client]
                    for simulation in (False, True):
                        self._client_slots.pop((client, simulation), None)

    def _client_slot(self, client: str | None, simulation: bool) -> contextlib.AbstractAsyncContextManager[Any]:
        """The semaphore that caps the grading (or simulation) slots one client holds at once
        (nothing for client None). Separate per kind: a client's spinning run never holds up its grading."""
        if client is None:
            return contextlib.nullcontext()
        with self._lock:
            slot = self._client_slots.get((client, simulation))
            if slot is None:
                slot = self._client_slots[client, simulation] = asyncio.Semaphore(self.settings.client_slots)
        return slot

    def _queue(
        self, learner_id: str, client: str | None, kind: str, job: Callable[[], Coroutine[Any, Any, T]]
    ) -> concurrent.futures.Future[T]:
        """Start the grader if needed and schedule `job()` on its loop; the admission is released when it ends."""
        try:
            self.start()
            future = self._call(self._tracked(job()))
        except BaseException:
            self._release(learner_id, client, kind)
            raise
        future.add_done_callback(lambda _f: self._release(learner_id, client, kind))
        return future

    def submit_future(
        self, learner_id: str, exercise: str, code: str, *, client: str | None = None
    ) -> concurrent.futures.Future[GradeResult]:
        """Queue a submission; a concurrent future of its `GradeResult`. Refusals raise at once."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        self._admit(learner_id, exercise, code, client, "grade")
        return self._queue(learner_id, client, "grade", lambda: self._grade_in_slot(exercise, code, client))

    async def submit(self, learner_id: str, exercise: str, code: str, *, client: str | None = None) -> GradeResult:
        """Grade `code` for `exercise` on behalf of `learner_id`; await it from any event loop.

        `client` (the request's network address) puts the submission under the per-client limits.
        Raises `UnknownExercise` (a KeyError) for an unknown exercise and a `SubmissionRefused`
        subclass (GraderUnavailable, LearnerBusy, ClientBusy, QueueFull, SubmissionTooLarge) when
        the submission is not graded; a refusal is not an attempt. Everything else, including
        infrastructure failures, comes back as a `GradeResult`.
        """
        return await asyncio.wrap_future(self.submit_future(learner_id, exercise, code, client=client))

    def grade(self, exercise: str, code: str, learner_id: str = "local") -> GradeResult:
        """Blocking `submit`, for scripts and the command line (not from the grader's own loop)."""
        return self.submit_future(learner_id, exercise, code).result()

    async def _grade_in_slot(self, exercise_name: str, code: str, client: str | None = None) -> GradeResult:
        from .exercises import get_exercise
        from .verdict import build_result, infrastructure_result

        exercise = get_exercise(exercise_name)
        warning = self._availability.message if self._availability.unsafe else None
        started = time.monotonic()
        cases = [c.to_json() for c in exercise.cases]
        outcome = await self._run_job(
            f"grading {exercise.name}",
            lambda nonce: encode_job(nonce, exercise.function, code, self.settings.cpu_seconds, cases),
            [c.id for c in exercise.cases],
            self.settings.timeout_s,
            lambda message, seconds: infrastructure_result(exercise.name, message, seconds=seconds),
            client=client,
        )
        if not isinstance(outcome, RunOutcome):
            return outcome
        try:
            result = build_result(exercise, code, outcome, self.settings, warning)
        except Exception as exc:  # noqa: BLE001 - a grader bug must not look like the learner's fault
            log.exception("grading %s failed", exercise.name)
            return infrastructure_result(
                exercise.name, f"internal error ({type(exc).__name__})", seconds=time.monotonic() - started
            )
        if result.passed and self.settings.prepare_simulations:
            self._prepare_simulation(exercise.name)
        return result

    async def _run_job(
        self,
        what: str,
        make_job: Callable[[str], str],
        case_ids: list[str],
        timeout: float,
        failed: Callable[[str, float], R],
        *,
        simulation: bool = False,
        client: str | None = None,
    ) -> RunOutcome | R:
        """Run one job in a worker of its own, in one of its client's slots and then a grading slot
        (a simulation slot for `simulation`): the worker's outcome, or `failed(message, seconds)`
        when no worker could start or the grader itself broke (an infrastructure failure, never
        the learner's). The worker is closed (killed) either way."""
        assert self._slots is not None and self._run_slots is not None and self._pool is not None
        async with self._client_slot(client, simulation), (self._run_slots if simulation else self._slots):
            started = time.monotonic()
            try:
                worker = await self._pool.acquire()
            except InfrastructureError as exc:
                return failed(str(exc), time.monotonic() - started)
            try:
                nonce = secrets.token_hex(16)
                return await worker.run(make_job(nonce), nonce, case_ids, timeout, simulation=simulation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a grader bug must not look like the learner's fault
                log.exception("%s failed", what)
                return failed(f"internal error ({type(exc).__name__})", time.monotonic() - started)
            finally:
                await asyncio.shield(worker.close())

    # -- "run it in the simulation" ---------------------------------------------------------

    def run_future(
        self, learner_id: str, exercise: str, code: str, *, steps: int | None = None, client: str | None = None
    ) -> concurrent.futures.Future[RunResult]:
        """Queue a simulation job for a (passing) solution; refusals raise at once, as for `submit`.

        ValueError when `steps` is out of range (it names the range).
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        from .runs import run_spec

        check_exercise(exercise)
        spec = run_spec(exercise, steps)  # KeyError / ValueError before anything is queued
        self._admit(learner_id, exercise, code, client, "run")
        return self._queue(learner_id, client, "run", lambda: self._simulate(exercise, code, spec, client))

    async def run(
        self, learner_id: str, exercise: str, code: str, *, steps: int | None = None, client: str | None = None
    ) -> RunResult:
        """Run `code`'s function in the exercise's simulation (see `runs.py`); await it from any loop."""
        return await asyncio.wrap_future(self.run_future(learner_id, exercise, code, steps=steps, client=client))

    def _prepare_simulation(self, exercise: str) -> None:
        """After a pass the page offers "run it in the simulation": compute the toolkit's side now
        (once per process; in the background), so the learner's run does not wait for it."""
        from .runs import warm_reference

        task = asyncio.ensure_future(asyncio.to_thread(warm_reference, exercise))
        task.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await coro
        finally:
            self._tasks.discard(task)

    async def _simulate(self, exercise_name: str, code: str, spec: dict[str, Any], client: str | None = None) -> RunResult:
        from .exercises import get_exercise
        from .runs import build_run_result, run_infrastructure_result, warm_reference

        exercise = get_exercise(exercise_name)
        warning = self._availability.message if self._availability.unsafe else None
        steps = spec.get("steps")
        # the toolkit's reference (a short training for the losses) is computed off this loop,
        # once per process, while the learner's job waits for or runs in its sandbox
        reference = asyncio.ensure_future(asyncio.to_thread(warm_reference, exercise.name, steps))
        reference.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, even if unused
        try:
            outcome = await self._run_job(
                f"simulation of {exercise.name}",
                lambda nonce: encode_job(nonce, exercise.function, code, self.settings.run_cpu_seconds, [], run=spec),
                [],
                self.settings.run_timeout_s,
                lambda message, seconds: run_infrastructure_result(exercise.name, message, seconds=seconds),
                simulation=True,
                client=client,
            )
            if not isinstance(outcome, RunOutcome):
                return outcome
            try:
                await reference
                return await asyncio.to_thread(build_run_result, exercise.name, spec, outcome, self.settings, warning)
            except Exception as exc:  # noqa: BLE001
                log.exception("simulation result of %s failed", exercise.name)
                return run_infrastructure_result(exercise.name, f"internal error ({type(exc).__name__})")
        finally:
            if not reference.done():
                reference.cancel()
