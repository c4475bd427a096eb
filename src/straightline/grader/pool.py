"""A pool of warm sandboxed workers: started ahead of time, torch imported, one submission each.

Importing torch is most of a worker's start-up (about 1-2 s of CPU), so the pool keeps `size`
workers started and waiting. Where they come from is the pool's `start` function: a sandbox of
their own (`solo_worker.start_ready_worker`, the default) or a child of the fork server
(`ForkServer.start_worker`), which is ready in tens of milliseconds. `acquire()` hands out the
oldest one (waiting for it to be ready if it is still starting) and immediately starts a
replacement. A worker is never given a second submission: after a run it is killed (see
`Worker.close`). Workers found dead while idle are discarded (a fork server's children die with
their zygote). With size 0 every submission starts its own worker.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Awaitable, Callable

from .sandbox import Availability
from .settings import GraderSettings
from .worker_handle import InfrastructureError, Worker
from .solo_worker import start_ready_worker

__all__ = ["WarmPool"]

log = logging.getLogger(__name__)


class WarmPool:
    """Warm workers for one grader; all methods run on the grader's event loop."""

    def __init__(
        self,
        settings: GraderSettings,
        availability: Availability,
        start: Callable[[], Awaitable[Worker]] | None = None,
    ):
        """`start`: returns a new ready worker, or raises InfrastructureError (default: a sandbox of its own)."""
        self.settings, self.availability = settings, availability
        self.size = settings.pool_size
        self._start_ready = start or functools.partial(start_ready_worker, settings, availability)
        self._slots: collections.deque[asyncio.Task[Worker]] = collections.deque()
        self._closed = False

    def _new_slot(self) -> asyncio.Task[Worker]:
        task = asyncio.get_running_loop().create_task(self._start_ready())
        task.add_done_callback(_consume_exception)
        return task

    def fill(self) -> None:
        """Start workers until `size` are ready or starting."""
        while not self._closed and len(self._slots) < self.size:
            self._slots.append(self._new_slot())

    async def acquire(self) -> Worker:
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
