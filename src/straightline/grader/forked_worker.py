"""One submission's worker as a child of the fork server: the same interface as `SoloWorker`.

    worker = await ForkedWorker.start(zygote, settings, number)   # the zygote forks a child
    await worker.wait_ready(timeout)                              # the child has locked itself down
    outcome = await worker.run(job, nonce, case_ids, timeout)     # `Worker.run`: the same records
    await worker.close()                                          # the zygote kills it (idempotent)

The grader makes the child's three descriptors and keeps its own ends: the job pipe's write end
(`job_writer`), the result pipe's read end (`reader`) and the capture file (`capture_fd`). The
zygote passes the child's ends on at the fork and closes its copies, so the result pipe reaches
EOF when the child ends, exactly as with a sandbox of its own. The child's exit status comes from
the zygote (`exit`); if the zygote dies first, the child is `lost` (the kernel has killed it with
the zygote's PID namespace), which is the grader's failure, not the learner's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import Protocol

from .inside import control
from .sandbox_process import capture_file, close_fd
from .settings import GraderSettings
from .worker_handle import Worker, connect_reader

__all__ = ["ForkedWorker", "KILL_GRACE_S"]

log = logging.getLogger(__name__)

KILL_GRACE_S = 5.0  # the zygote's own deadline for a child: the run's wall-clock limit plus this


async def connect_writer(fd: int) -> asyncio.StreamWriter:
    """An asyncio writer on the write end of a pipe; takes `fd`."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", buffering=0))
    return asyncio.StreamWriter(transport, protocol, None, loop)


class Spawner(Protocol):
    """What a forked worker needs of its zygote (`fork_server.ZygoteSandbox`)."""

    def spawn(self, worker: "ForkedWorker", fds: tuple[int, int, int]) -> None: ...

    def send(self, op: int, child: int, *, seconds: float = 0.0) -> None: ...

    async def close(self, reason: str) -> None: ...


class ForkedWorker(Worker):
    """A child of the zygote, for one submission (see the module docstring)."""

    def __init__(
        self,
        zygote: Spawner,
        number: int,
        tag: str,
        reader: asyncio.StreamReader,
        transport: asyncio.BaseTransport,
        job_writer: asyncio.StreamWriter,
        capture_fd: int,
        settings: GraderSettings,
    ):
        self.zygote, self.number, self.tag = zygote, number, tag
        self.reader, self.transport, self.job_writer = reader, transport, job_writer
        self.capture_fd, self.settings = capture_fd, settings
        self.exit: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.pid: int | None = None  # inside the sandbox's PID namespace, once the zygote says
        self._lost: str | None = None
        self.closed = False

    @classmethod
    async def start(cls, zygote: Spawner, settings: GraderSettings, number: int) -> "ForkedWorker":
        """Ask the zygote for a child (InfrastructureError if it cannot be asked); then `wait_ready`."""
        tag = secrets.token_hex(7)  # 14 characters: the child's process name (at most 15) is its tag
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        capture_fd = capture_file()
        try:  # (from here on `result_r` and `job_w` belong to file objects that close them)
            reader, transport = await connect_reader(result_r)
            job_writer = await connect_writer(job_w)
        except BaseException:
            for fd in (job_r, result_w, capture_fd):
                os.close(fd)
            raise
        worker = cls(zygote, number, tag, reader, transport, job_writer, capture_fd, settings)
        try:
            zygote.spawn(worker, (job_r, result_w, capture_fd))
        except BaseException:
            await worker.close()
            raise
        finally:
            os.close(job_r)  # the zygote and the child have their copies
            os.close(result_w)
        return worker

    # -- what the zygote reports ----------------------------------------------------------------

    def started(self, pid: int) -> None:
        self.pid = pid

    def exited(self, status: int | None) -> None:
        if not self.exit.done():
            self.exit.set_result(status)

    def lose(self, reason: str) -> None:
        """The zygote is gone (and the child with it): an infrastructure failure."""
        if not self.exit.done():
            self._lost = reason
            self.exit.set_result(None)

    # -- the Worker interface -------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        return self.exit.result() if self.exit.done() else None

    @property
    def alive(self) -> bool:
        return not self.closed and not self.exit.done()

    @property
    def lost(self) -> str | None:
        return self._lost

    def _job_handed_over(self, timeout: float) -> None:
        self.zygote.send(control.DEADLINE, self.number, seconds=timeout + KILL_GRACE_S)

    async def _reap(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self.exit), timeout)
        except asyncio.TimeoutError:
            pass

    async def close(self) -> None:
        """Have the zygote kill the child, wait for its exit, release descriptors. Idempotent.

        A child that is not reported dead 10 s after the kill means the zygote no longer works:
        it is restarted (which kills the child with the zygote's PID namespace).
        """
        if self.closed:
            return
        self.closed = True
        if not self.exit.done():
            self.zygote.send(control.KILL, self.number)
            try:
                await asyncio.wait_for(asyncio.shield(self.exit), 10.0)
            except asyncio.TimeoutError:
                log.error("fork server: child %s (%s) not reported dead 10 s after the kill", self.number, self.tag)
                await self.zygote.close("a child it was asked to kill was not reported dead")
        self.transport.close()
        self.job_writer.close()
        close_fd(self.capture_fd)
