"""A bubblewrap process and its PID namespace, seen from the trusted side: launch it, kill it all.

Both a per-submission worker (`solo_worker.py`) and the fork server's zygote
(`fork_server.py`) run as one `SandboxProcess`:

    seccomp    a pipe holding the filter, read by bubblewrap (or by the worker in unsafe mode)
    info       a pipe on which bubblewrap writes, before the sandboxed program starts, the host
               pid of the PID namespace's init and the namespace's inode number
    stdout/2   a file the caller chose (a memfd), read afterwards
    the rest   descriptors the caller passes (`pass_fds`)

`close()` kills the namespace's init, then bubblewrap's process group with SIGKILL; with
`--die-with-parent` and the PID namespace, that takes every process of the sandbox with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from typing import Any

from .worker_handle import InfrastructureError

__all__ = ["Command", "SandboxProcess", "capture_file", "close_fd"]

log = logging.getLogger(__name__)

# (filter descriptor or None, info descriptor) -> (argv, environment, working directory, a
# temporary directory to delete at the end or None)
Command = Callable[[int | None, int], tuple[list[str], dict[str, str], str, str | None]]


def close_fd(fd: int) -> None:
    """Close `fd`, ignoring a descriptor that is already closed."""
    try:
        os.close(fd)
    except OSError:
        pass


def capture_file() -> int:
    """A new anonymous file for a sandboxed process's output (a memfd where there is one)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("straightline-grader-output", 0)
    fd, path = tempfile.mkstemp(prefix="straightline-grader-output-")
    os.unlink(path)
    return fd


async def _spawn(cmd: list[str], **kwargs: Any) -> asyncio.subprocess.Process:
    """`create_subprocess_exec`, safe to cancel.

    Cancelling `create_subprocess_exec` itself can hang forever in CPython 3.11 (the transport
    then waits for pipes that never connected). So the spawn runs as its own task; if we are
    cancelled meanwhile, it is let finish, the new process group is killed, and the cancellation
    goes on.
    """
    task = asyncio.ensure_future(asyncio.create_subprocess_exec(*cmd, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            proc = await task
        except Exception:  # noqa: BLE001 - it failed to start: nothing to kill
            raise asyncio.CancelledError() from None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        await proc.wait()
        raise


class SandboxProcess:
    """A started bubblewrap (or unsafe plain) process. `await SandboxProcess.launch(...)`, then `close`."""

    def __init__(self, proc: asyncio.subprocess.Process, tag: str, info_fd: int, workdir: str | None):
        self.proc, self.tag, self.info_fd, self.workdir = proc, tag, info_fd, workdir
        self.ns_init_pid: int | None = None  # host pid of PID 1 of the sandbox's PID namespace
        self.pid_ns: int | None = None  # that namespace's inode number
        self.closed = False

    @classmethod
    async def launch(
        cls,
        command: Command,
        *,
        tag: str,
        program: bytes,
        use_filter: bool,
        stdin: Any,
        output_fd: int,
        pass_fds: tuple[int, ...],
    ) -> "SandboxProcess":
        """Start `command` with the seccomp `program` on a pipe (passed only if `use_filter`).

        InfrastructureError if it cannot be started. The caller still owns `output_fd` and
        `pass_fds` (and closes its copies of the child's ends).
        """
        seccomp_r, seccomp_w = os.pipe()
        info_r, info_w = os.pipe()  # bubblewrap writes the host pid of the namespace's init here
        workdir = None
        try:
            try:
                os.write(seccomp_w, program)  # 8 bytes an instruction: fits the pipe
            finally:
                os.close(seccomp_w)
            cmd, env, cwd, workdir = command(seccomp_r if use_filter else None, info_w)
            proc = await _spawn(
                cmd,
                stdin=stdin,
                stdout=output_fd,
                stderr=output_fd,
                pass_fds=(*pass_fds, seccomp_r, info_w),
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        except BaseException as exc:
            os.close(info_r)
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, OSError):
                raise InfrastructureError(f"could not start the sandbox: {exc}") from exc
            raise
        finally:
            os.close(seccomp_r)
            os.close(info_w)
        return cls(proc, tag, info_r, workdir)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def read_info(self) -> None:
        """bubblewrap's --info-fd JSON (written before the program starts): the namespace init's pid."""
        try:
            os.set_blocking(self.info_fd, False)
            data = os.read(self.info_fd, 65536)
            info = json.loads(data)
            pid, ns = info.get("child-pid"), info.get("pid-namespace")
            if isinstance(pid, int) and pid > 1:
                self.ns_init_pid = pid
                self.pid_ns = ns if isinstance(ns, int) else None
        except (OSError, ValueError, AttributeError):
            pass

    def _namespace_alive(self) -> bool:
        """Whether the namespace's init still runs (not gone, not a zombie, not a reused pid)."""
        pid = self.ns_init_pid
        if pid is None:
            return False
        try:
            if self.pid_ns is not None and os.readlink(f"/proc/{pid}/ns/pid") != f"pid:[{self.pid_ns}]":
                return False  # the pid now belongs to another process
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in (b"Z", b"X")

    async def reap(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def kill(self) -> None:
        """SIGKILL to bubblewrap's process group (and to the namespace's init, if known)."""
        if self.proc.returncode is not None:
            return  # reaped already: its pid (and group id) may belong to someone else by now
        for kill, pid in ((os.kill, self.ns_init_pid), (os.killpg, self.proc.pid)):
            if pid:
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    async def close(self) -> None:
        """Kill the whole sandbox, wait until it is gone, release descriptors. Idempotent.

        The namespace's init is killed first and bubblewrap (its parent) is left to notice; then
        bubblewrap's group is killed for good measure (in unsafe mode, where there is no
        namespace, that is the whole story); then we wait until the init has exited. The kernel
        lets a PID namespace's init finish exiting only after every other process of the
        namespace is gone, so from then on nothing of the sandbox is left - not even processes
        that started their own session.
        """
        if self.closed:
            return
        self.closed = True
        if self.ns_init_pid is None and self.proc.returncode is None:
            self.read_info()  # closed before it was ready: the info is written early, try now
        log.debug("sandbox %s: closing (bubblewrap %s, namespace init %s)", self.tag, self.proc.pid, self.ns_init_pid)
        if self.proc.returncode is None and self.ns_init_pid:
            try:
                os.kill(self.ns_init_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5.0)
            except asyncio.TimeoutError:
                log.warning("sandbox %s: bubblewrap still running 5 s after its namespace was killed", self.tag)
        self.kill()
        try:
            await asyncio.wait_for(self.proc.wait(), 10.0)
        except asyncio.TimeoutError:
            log.error("sandbox %s: bubblewrap did not exit after SIGKILL", self.tag)
        deadline = time.monotonic() + 10.0
        while self._namespace_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # the kernel is still taking the namespace down
        if self._namespace_alive():
            log.error("sandbox %s: its PID namespace still has processes 10 s after the kill", self.tag)
        close_fd(self.info_fd)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
