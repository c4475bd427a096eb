"""A pool of warm sandboxed workers: started ahead of time, torch imported, one submission each.

Importing torch is most of a worker's start-up (about 1-2 s of CPU), so the pool keeps `size`
workers started and waiting. `acquire()` hands out the oldest one (waiting for it to be ready if
it is still importing) and immediately starts a replacement. A worker is never given a second
submission: after a run it is killed (see `WorkerProcess.close`). Workers found dead while idle
are discarded. With size 0 every submission starts its own worker.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from .sandbox import Availability
from .settings import GraderSettings
from .worker_process import InfrastructureError, WorkerProcess

__all__ = ["WarmPool"]

log = logging.getLogger(__name__)


class WarmPool:
    """Warm workers for one grader; all methods run on the grader's event loop."""

    def __init__(self, settings: GraderSettings, availability: Availability):
        self.settings, self.availability = settings, availability
        self.size = settings.pool_size
        self._slots: collections.deque[asyncio.Task[WorkerProcess]] = collections.deque()
        self._closed = False

    async def _start_ready(self) -> WorkerProcess:
        worker = await WorkerProcess.start(self.settings, self.availability)
        try:
            await worker.wait_ready(self.settings.startup_timeout_s)
        except BaseException:
            await asyncio.shield(worker.close())
            raise
        return worker

    def _new_slot(self) -> asyncio.Task[WorkerProcess]:
        task = asyncio.get_running_loop().create_task(self._start_ready())
        task.add_done_callback(_consume_exception)
        return task

    def fill(self) -> None:
        """Start workers until `size` are ready or starting."""
        while not self._closed and len(self._slots) < self.size:
            self._slots.append(self._new_slot())

    async def acquire(self) -> WorkerProcess:
        """A ready worker of its own for one submission (InfrastructureError if none can start)."""
        if self._closed:
            raise InfrastructureError("the grader is shutting down")
        try:
            while self._slots:
                task = self._slots.popleft()
                try:
                    worker = await asyncio.shield(task)
                except InfrastructureError as exc:
                    log.warning("a warm worker failed to start: %s", exc)
                    raise
                if worker.alive:
                    return worker
                await worker.close()  # died while idle (e.g. killed by the OOM killer): discard
            return await self._start_ready()
        finally:
            self.fill()

    async def close(self) -> None:
        """Stop starting workers and kill the idle ones."""
        self._closed = True
        slots, self._slots = list(self._slots), collections.deque()
        for task in slots:
            if not task.done():
                task.cancel()
        for task in slots:
            try:
                worker = await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down anyway
                continue
            await worker.close()


def _consume_exception(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # mark retrieved: a failed warm start is reported when it is acquired
