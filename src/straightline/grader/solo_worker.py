"""One sandboxed worker process with a bubblewrap sandbox of its own: start, wait until warm, run, kill.

Descriptors of a worker (see `worker.py` for the record protocol and `sandbox_process.py` for
the sandbox's own pipes):

    stdin      a pipe: the job (one JSON line), then closed
    stdout/2   one capture file (a memfd) that the grader reads after the run
    RESULT_FD  a pipe: the worker's records

When a run ends, for whatever reason, the whole sandbox is killed (`SandboxProcess.close`).
A worker grades one submission and is never reused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import tempfile

from .inside import seccomp
from .sandbox import SANDBOX_ENV, Availability, bwrap_command, sandbox_env, unsafe_command
from .sandbox_process import SandboxProcess, capture_file, close_fd
from .settings import GraderSettings
from .worker_handle import InfrastructureError, Worker, connect_reader

__all__ = ["SoloWorker", "start_ready_worker"]

log = logging.getLogger(__name__)


class SoloWorker(Worker):
    """A started worker. Use `await SoloWorker.start(...)`, then `wait_ready`, `run`, `close`."""

    def __init__(
        self,
        sandbox: SandboxProcess,
        reader: asyncio.StreamReader,
        transport: asyncio.BaseTransport,
        capture_fd: int,
        settings: GraderSettings,
    ):
        self.sandbox, self.reader, self.transport = sandbox, reader, transport
        assert sandbox.proc.stdin is not None
        self.job_writer = sandbox.proc.stdin
        self.capture_fd, self.tag, self.settings = capture_fd, sandbox.tag, settings
        self.closed = False

    @property
    def proc(self) -> asyncio.subprocess.Process:
        return self.sandbox.proc

    @property
    def returncode(self) -> int | None:
        return self.sandbox.returncode

    @classmethod
    async def start(cls, settings: GraderSettings, availability: Availability) -> "SoloWorker":
        """Spawn a worker (it then imports torch; `wait_ready` waits for that)."""
        if not availability.ok:
            raise InfrastructureError(availability.message)
        tag = secrets.token_hex(8)
        result_r, result_w = os.pipe()
        capture_fd = capture_file()

        def command(filter_fd: int | None, info_fd: int) -> tuple[list[str], dict[str, str], str, str | None]:
            if availability.unsafe:
                workdir = tempfile.mkdtemp(prefix="straightline-grade-")
                cmd = unsafe_command(settings, result_fd=result_w, seccomp_fd=filter_fd, tag=tag)
                return cmd, {**SANDBOX_ENV, "HOME": workdir, "PATH": "/usr/bin:/bin"}, workdir, workdir
            assert availability.bwrap is not None
            cmd = bwrap_command(availability.bwrap, settings, result_fd=result_w, seccomp_fd=filter_fd, info_fd=info_fd, tag=tag)
            return cmd, sandbox_env(), "/", None

        try:
            sandbox = await SandboxProcess.launch(
                command,
                tag=tag,
                program=seccomp.filter_program(),
                use_filter=settings.process_filter,
                stdin=asyncio.subprocess.PIPE,
                output_fd=capture_fd,
                pass_fds=(result_w,),
            )
        except BaseException:
            os.close(result_r)
            os.close(capture_fd)
            raise
        finally:
            os.close(result_w)  # the child has its copy; ours would keep the pipe from reaching EOF
        reader, transport = await connect_reader(result_r)
        return cls(sandbox, reader, transport, capture_fd, settings)

    def _on_ready(self) -> None:
        self.sandbox.read_info()

    async def _reap(self, timeout: float) -> None:
        await self.sandbox.reap(timeout)

    def kill(self) -> None:
        """SIGKILL to bubblewrap's process group (and to the namespace's init, if known)."""
        self.sandbox.kill()

    async def close(self) -> None:
        """Kill the whole sandbox (`SandboxProcess.close`), release descriptors. Idempotent."""
        if self.closed:
            return
        self.closed = True
        await self.sandbox.close()
        self.transport.close()
        close_fd(self.capture_fd)


async def start_ready_worker(settings: GraderSettings, availability: Availability) -> SoloWorker:
    """A worker in a sandbox of its own, started and warm (torch imported); InfrastructureError if not."""
    worker = await SoloWorker.start(settings, availability)
    return await worker.until_ready(settings.startup_timeout_s)
