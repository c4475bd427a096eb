"""Fork-server mode: one long-lived sandbox per grader imports torch once; each submission is a
fresh child forked from it, isolated from it and from every other child, then discarded.

    server = ForkServer(settings, availability)
    worker = await server.start_worker()     # a ready ForkedWorker (the pool calls this)
    ...                                      # worker.run(...), worker.close(), as any Worker
    await server.close()                     # kills the zygote's sandbox and every child

`ZygoteSandbox` is the trusted side of one zygote sandbox (`inside/zygote.py` runs inside it): bubblewrap with
the worker's layout, the zygote's seccomp filter and CAP_SYS_ADMIN / CAP_SETPCAP inside its own
user namespace (`sandbox.zygote_command`), a SOCK_SEQPACKET control socket (`inside/control.py`), and
the children it has forked, by number. It reads the control socket on the grader's loop: STARTED
and EXITED go to the child's `ForkedWorker`; EOF means the zygote died, and every child it had is
`lost` (an infrastructure failure: not an attempt).

`ForkServer` starts the zygote on first use and again whenever it has died. Until a first child
has come up ready, a failure means fork-server mode does not work on this machine (an old
kernel, a bubblewrap that will not grant the capabilities, ...): that is logged once, with the
reason, and from then on `start_worker` hands out workers with a sandbox of their own
(`unavailable` keeps the reason). It is also unavailable from the start in unsafe local mode
(no bubblewrap) and with the process filter switched off (the children's isolation from each
other rests on their seccomp filter).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import socket
import subprocess

from .inside import control, seccomp
from .forked_worker import ForkedWorker
from .sandbox import Availability, sandbox_env, zygote_command
from .sandbox_process import SandboxProcess, capture_file, close_fd
from .settings import GraderSettings
from .worker_handle import InfrastructureError, Worker
from .solo_worker import start_ready_worker

__all__ = ["ForkServer", "ZygoteSandbox"]

log = logging.getLogger(__name__)

LOST = "the grader's sandbox process stopped while your code ran (it restarts by itself)"


class ZygoteSandbox:
    """One running zygote sandbox, seen from the grader's loop (see the module docstring)."""

    def __init__(self, sandbox: SandboxProcess, sock: socket.socket, log_fd: int):
        self.sandbox, self.sock, self.log_fd = sandbox, sock, log_fd
        self.children: dict[int, ForkedWorker] = {}
        self.alive = True
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, settings: GraderSettings, availability: Availability) -> "ZygoteSandbox":
        """Launch the sandbox and wait until torch is imported; InfrastructureError if it fails."""
        assert availability.bwrap is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_fd = capture_file()
        tag = secrets.token_hex(8)

        def command(filter_fd: int | None, info_fd: int) -> tuple[list[str], dict[str, str], str, str | None]:
            assert availability.bwrap is not None and filter_fd is not None
            cmd = zygote_command(
                availability.bwrap, settings, control_fd=theirs.fileno(), seccomp_fd=filter_fd, info_fd=info_fd, tag=tag
            )
            return cmd, sandbox_env(), "/", None

        try:
            sandbox = await SandboxProcess.launch(
                command,
                tag=tag,
                program=seccomp.filter_program(role="zygote"),
                use_filter=True,
                stdin=subprocess.DEVNULL,
                output_fd=log_fd,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            os.close(log_fd)
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        zygote = cls(sandbox, ours, log_fd)
        try:
            await zygote._wait_ready(settings.startup_timeout_s)
        except BaseException:
            await asyncio.shield(zygote.close("it failed to start"))
            raise
        zygote._reader = asyncio.get_running_loop().create_task(zygote._read())
        return zygote

    def _log_tail(self) -> str:
        try:
            size = os.fstat(self.log_fd).st_size
            return os.pread(self.log_fd, min(size, 1 << 20), max(0, size - (1 << 20))).decode(errors="replace").strip()[-1500:]
        except OSError:
            return ""

    async def _receive(self) -> control.Message | None:
        """The next message, or None at EOF; ValueError for a malformed one."""
        data = await asyncio.get_running_loop().sock_recv(self.sock, control.RECORD.size + 1)
        return control.unpack(data) if data else None

    async def _wait_ready(self, timeout: float) -> None:
        try:
            message = await asyncio.wait_for(self._receive(), timeout)
        except asyncio.TimeoutError:
            raise InfrastructureError(f"the fork server did not start within {timeout:g} s") from None
        except (OSError, ValueError) as exc:
            raise InfrastructureError(f"the fork server started badly: {exc}") from None
        if message is None:
            await self.sandbox.reap(2.0)
            raise InfrastructureError(
                f"the fork server exited while starting (status {self.sandbox.returncode}): {self._log_tail() or 'no output'}"
            )
        if message.op != control.READY:
            raise InfrastructureError(f"the fork server started badly: message {message.op} before ready")
        self.sandbox.read_info()

    async def _read(self) -> None:
        """Dispatch the zygote's reports until it goes away; then everything it had is lost."""
        reason = "its control socket closed"
        try:
            while True:
                try:
                    message = await self._receive()
                except (OSError, ValueError) as exc:
                    reason = f"its control socket failed: {exc}"
                    break
                if message is None:
                    break
                child = self.children.get(message.child)
                if child is None:
                    continue
                if message.op == control.STARTED:
                    child.started(message.value)
                elif message.op == control.EXITED:
                    del self.children[message.child]
                    child.exited(message.value)
                elif message.op == control.FAILED:
                    del self.children[message.child]
                    child.lose(f"the sandbox could not start a process for your code ({os.strerror(message.value)})")
        except asyncio.CancelledError:
            return  # closing: close() does the rest
        await self.close(reason)

    def send(self, op: int, child: int, *, seconds: float = 0.0) -> None:
        """A message without descriptors; ignored once the zygote is gone (its children are lost anyway)."""
        if not self.alive:
            return
        try:
            self.sock.send(control.pack(op, child, seconds=seconds))
        except OSError as exc:
            log.warning("fork server %s: could not send message %s: %s", self.sandbox.tag, op, exc)

    def spawn(self, worker: ForkedWorker, fds: tuple[int, int, int]) -> None:
        """Register `worker` and ask for its child, handing over (job, result, capture)."""
        if not self.alive:
            raise InfrastructureError("the fork server is not running")
        self.children[worker.number] = worker
        try:
            socket.send_fds(self.sock, [control.pack(control.SPAWN, worker.number, tag=worker.tag)], list(fds))
        except OSError as exc:
            del self.children[worker.number]
            raise InfrastructureError(f"could not reach the fork server: {exc}") from exc

    async def close(self, reason: str) -> None:
        """Kill the zygote's sandbox (and with its PID namespace every child); the children are lost. Idempotent."""
        if self.alive:
            self.alive = False
            log.info("fork server %s: stopping (%s)", self.sandbox.tag, reason)
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        children, self.children = list(self.children.values()), {}
        for child in children:
            child.lose(LOST)
        if not self.sandbox.closed:
            await self.sandbox.close()
            self.sock.close()
            close_fd(self.log_fd)


class ForkServer:
    """Forked workers for one grader, all methods on the grader's loop (see the module docstring)."""

    def __init__(self, settings: GraderSettings, availability: Availability):
        self.settings, self.availability = settings, availability
        self.zygote: ZygoteSandbox | None = None
        self.starts = 0  # zygotes started so far (the first, then one per restart)
        self.unavailable: str | None = None
        if availability.unsafe or not availability.ok:
            self.unavailable = "fork-server mode needs the bubblewrap sandbox"
        elif not settings.process_filter:
            self.unavailable = "fork-server mode needs the process filter (process_filter=True)"
        elif not hasattr(os, "pidfd_open"):
            self.unavailable = "fork-server mode needs pidfd_open (Linux 5.3 or later)"
        self._proven = False
        self._starting: asyncio.Task[ZygoteSandbox] | None = None
        self._numbers = itertools.count(1)
        self._closed = False

    @property
    def active(self) -> bool:
        """True once a child has come up ready here (and fork-server mode was not given up)."""
        return self._proven and self.unavailable is None

    async def start_worker(self) -> Worker:
        """A new ready worker: a forked child, or after a failed probe a sandbox of its own."""
        if self.unavailable is None:
            try:
                worker = await self._fork()
            except InfrastructureError as exc:
                if self._proven or self._closed:
                    raise
                await self._give_up(str(exc))
            else:
                self._proven = True
                return worker
        return await start_ready_worker(self.settings, self.availability)

    async def _give_up(self, reason: str) -> None:
        if self.unavailable is not None or self._proven:
            return
        self.unavailable = reason
        log.warning("the grader's fork server does not work here (%s); grading in a sandbox per worker instead", reason)
        if self.zygote is not None:
            await self.zygote.close("fork-server mode given up")

    async def _fork(self) -> ForkedWorker:
        zygote = await self._running()
        worker = await ForkedWorker.start(zygote, self.settings, next(self._numbers))
        return await worker.until_ready(self.settings.startup_timeout_s)

    async def _running(self) -> ZygoteSandbox:
        """The live zygote, started (again) if there is none; InfrastructureError if it cannot start."""
        if self._closed:
            raise InfrastructureError("the grader is shutting down")
        if self.zygote is not None and self.zygote.alive:
            return self.zygote
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._start_zygote())
        return await asyncio.shield(self._starting)

    async def _start_zygote(self) -> ZygoteSandbox:
        if self.zygote is not None:
            await self.zygote.close("it died; restarting")
        self.starts += 1
        self.zygote = await ZygoteSandbox.start(self.settings, self.availability)
        if self._closed:  # closed while it started
            await self.zygote.close("the grader is shutting down")
            raise InfrastructureError("the grader is shutting down")
        return self.zygote

    async def close(self) -> None:
        self._closed = True
        if self._starting is not None and not self._starting.done():
            try:
                await self._starting
            except (InfrastructureError, asyncio.CancelledError):
                pass
        if self.zygote is not None:
            await self.zygote.close("the grader is shutting down")
