"""One sandboxed worker process, seen from the trusted side: start, wait until warm, run, kill.

Descriptors of a worker:

    stdin      a pipe: the job (one JSON line), then closed
    stdout/2   one capture file (a memfd) that the grader reads after the run; its size is capped
               by the worker's RLIMIT_FSIZE, so a flood of output costs the grader nothing
    RESULT_FD  a pipe: the worker's records, read line by line with a size cap
    seccomp    a pipe holding the filter, read by bubblewrap (or by the worker in unsafe mode)

The run enforces the wall-clock deadline and the exact order of records (`accepted`, then either
a terminal error record or `start`/`case` for every test case in order, then `done`). When it
ends, for whatever reason, the whole process group of bubblewrap is killed with SIGKILL; with
`--die-with-parent` and the PID namespace, that takes every process of the sandbox with it.
A worker grades one submission and is never reused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from . import seccomp
from .protocol import MAX_LINE_BYTES, ProtocolError, parse_line
from .sandbox import SANDBOX_ENV, Availability, bwrap_command, sandbox_env, unsafe_command
from .settings import GraderSettings

__all__ = ["InfrastructureError", "RecordReader", "RunOutcome", "WorkerProcess"]

log = logging.getLogger(__name__)

MAX_RESULT_BYTES = 32 * 1024 * 1024
TERMINAL = ("syntax_error", "load_error", "missing_function")


class InfrastructureError(RuntimeError):
    """The grader's own machinery failed (not the learner's code)."""


@dataclass
class RunOutcome:
    """What happened while a worker ran one job (raw: the verdict is made elsewhere)."""

    accepted: bool = False
    done: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    protocol_error: str | None = None
    timed_out: bool = False
    returncode: int | None = None
    started_case: str | None = None
    output: str = ""
    output_truncated: bool = False
    infra_error: str | None = None
    seconds: float = 0.0
    tag: str = ""


def _capture_file() -> int:
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


class _Sequence:
    """The order of records an honest worker writes; anything else is a ProtocolError.

    A grading job: accepted, then a terminal error or start/case for each case in order, done.
    A simulation job (`simulation=True`, no cases): accepted, then a terminal error or one `run`
    record, done.
    """

    def __init__(self, case_ids: list[str], simulation: bool = False):
        self.case_ids = case_ids
        self.simulation = simulation
        self.state = "new"  # new -> accepted -> (terminal | started k | finished k | ran) -> done
        self.index = 0

    def feed(self, record: dict[str, Any]) -> None:
        kind = record["type"]
        state = self.state
        if state == "new" and kind == "accepted":
            self.state = "accepted"
        elif state == "accepted" and kind in TERMINAL:
            self.state = "terminal"
        elif self.simulation and state == "accepted" and kind == "run":
            self.state = "ran"
        elif not self.simulation and state in ("accepted", "finished") and kind == "start":
            if self.index >= len(self.case_ids) or record.get("case") != self.case_ids[self.index]:
                raise ProtocolError("a test case out of order")
            self.state = "started"
        elif state == "started" and kind == "case":
            if record.get("case") != self.case_ids[self.index]:
                raise ProtocolError("a result for another test case")
            self.index += 1
            self.state = "finished"
        elif kind == "done" and (
            state in ("terminal", "ran") or (state == "finished" and self.index == len(self.case_ids))
        ):
            self.state = "done"
        else:
            raise ProtocolError(f"a {kind!r} record where none belongs")


class RecordReader:
    """Feeds result lines into a `RunOutcome`, enforcing the nonce, the schema and the order."""

    def __init__(self, outcome: RunOutcome, nonce: str, case_ids: list[str], simulation: bool = False):
        self.outcome, self.nonce = outcome, nonce
        self.sequence = _Sequence(case_ids, simulation)
        self.total = 0

    def feed(self, line: bytes) -> bool:
        """Take one line; False when reading should stop (`done`, or a protocol error)."""
        outcome = self.outcome
        self.total += len(line)
        if self.total > MAX_RESULT_BYTES:
            outcome.protocol_error = "more result data than the limit"
            return False
        try:
            record = parse_line(line.rstrip(b"\n"), self.nonce)
            self.sequence.feed(record)
        except ProtocolError as exc:
            outcome.protocol_error = str(exc)
            return False
        outcome.records.append(record)
        kind = record["type"]
        if kind == "accepted":
            outcome.accepted = True
        elif kind == "start":
            outcome.started_case = record["case"]
        elif kind == "case":
            outcome.started_case = None
        elif kind == "done":
            outcome.done = True
            return False
        return True


class WorkerProcess:
    """A started worker. Use `await WorkerProcess.start(...)`, then `wait_ready`, `run`, `close`."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        transport: asyncio.BaseTransport,
        capture_fd: int,
        tag: str,
        settings: GraderSettings,
        workdir: str | None,
        info_fd: int,
    ):
        self.proc, self.reader, self.transport = proc, reader, transport
        self.capture_fd, self.tag, self.settings, self.workdir = capture_fd, tag, settings, workdir
        self.info_fd = info_fd
        self.ns_init_pid: int | None = None  # host pid of PID 1 of the sandbox's PID namespace
        self.pid_ns: int | None = None  # that namespace's inode number
        self.closed = False

    def _read_info(self) -> None:
        """bubblewrap's --info-fd JSON (written before the worker starts): the namespace init's pid."""
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

    @classmethod
    async def start(cls, settings: GraderSettings, availability: Availability) -> "WorkerProcess":
        """Spawn a worker (it then imports torch; `wait_ready` waits for that)."""
        if not availability.ok:
            raise InfrastructureError(availability.message)
        tag = secrets.token_hex(8)
        result_r, result_w = os.pipe()
        seccomp_r, seccomp_w = os.pipe()
        info_r, info_w = os.pipe()  # bubblewrap writes the host pid of the namespace's init here
        capture_fd = _capture_file()
        workdir = None
        try:
            try:
                os.write(seccomp_w, seccomp.filter_program())  # 8 bytes an instruction: fits the pipe
            finally:
                os.close(seccomp_w)
            filter_fd = seccomp_r if settings.process_filter else None
            if availability.unsafe:
                workdir = tempfile.mkdtemp(prefix="straightline-grade-")
                cmd = unsafe_command(settings, result_fd=result_w, seccomp_fd=filter_fd, tag=tag)
                env, cwd = {**SANDBOX_ENV, "HOME": workdir, "PATH": "/usr/bin:/bin"}, workdir
            else:
                assert availability.bwrap is not None
                cmd = bwrap_command(
                    availability.bwrap, settings, result_fd=result_w, seccomp_fd=filter_fd, info_fd=info_w, tag=tag
                )
                env, cwd = sandbox_env(), "/"
            proc = await _spawn(
                cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=capture_fd,
                stderr=capture_fd,
                pass_fds=(result_w, seccomp_r, info_w),
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        except BaseException as exc:
            os.close(result_r)
            os.close(info_r)
            os.close(capture_fd)
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, OSError):
                raise InfrastructureError(f"could not start the sandbox: {exc}") from exc
            raise
        finally:
            os.close(result_w)  # the child has its copies; ours would keep the pipe from reaching EOF
            os.close(seccomp_r)
            os.close(info_w)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(result_r, "rb", buffering=0)
        )
        return cls(proc, reader, transport, capture_fd, tag, settings, workdir, info_r)

    @property
    def alive(self) -> bool:
        return not self.closed and self.proc.returncode is None

    def _capture(self, limit: int) -> tuple[str, bool]:
        try:
            size = os.fstat(self.capture_fd).st_size
            data = os.pread(self.capture_fd, min(size, limit), 0)
        except OSError:
            return "", False
        return data.decode("utf-8", errors="replace"), size >= limit

    def _stderr_tail(self) -> str:
        text, _ = self._capture(1 << 20)
        return text.strip()[-1500:]

    async def wait_ready(self, timeout: float) -> None:
        """Until the worker has imported torch; InfrastructureError if it fails or takes too long."""
        try:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise InfrastructureError(f"the sandbox worker did not start within {timeout:g} s") from None
        except (ValueError, asyncio.LimitOverrunError):
            line = b"?"
        if not line:
            await self._reap(2.0)
            tail = self._stderr_tail()
            code = self.proc.returncode
            await self.close()
            raise InfrastructureError(f"the sandbox worker exited while starting (status {code}): {tail or 'no output'}")
        try:
            parse_line(line.rstrip(b"\n"), None)
        except ProtocolError as exc:
            await self.close()
            raise InfrastructureError(f"the sandbox worker started badly: {exc}") from None
        self._read_info()

    async def run(
        self, job: bytes, nonce: str, case_ids: list[str], timeout: float, *, simulation: bool = False
    ) -> RunOutcome:
        """Hand over the job and collect the records until `done`, EOF or the deadline.

        `simulation`: the job is a "run it in the simulation" job (one `run` record, no cases).
        """
        outcome = RunOutcome(tag=self.tag)
        start = time.monotonic()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(job)
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError) as exc:
            outcome.infra_error = f"the sandbox worker went away before the job was handed over ({exc})"
        reader = RecordReader(outcome, nonce, case_ids, simulation)
        deadline = start + timeout
        while outcome.infra_error is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome.timed_out = True
                break
            try:
                line = await asyncio.wait_for(self.reader.readline(), remaining)
            except asyncio.TimeoutError:
                outcome.timed_out = True
                break
            except (ValueError, asyncio.LimitOverrunError):
                outcome.protocol_error = "a record line longer than the limit"
                break
            if not line or not reader.feed(line):
                break  # EOF (the worker or the whole sandbox ended), `done`, or a protocol error
        outcome.seconds = time.monotonic() - start
        if not outcome.done and not outcome.timed_out:
            await self._reap(1.0)  # ended by itself: let its exit status arrive
        outcome.returncode = self.proc.returncode
        outcome.output, outcome.output_truncated = self._capture(self.settings.output_bytes)
        if not outcome.accepted and outcome.infra_error is None:  # the learner's code never ran
            if outcome.protocol_error is not None:
                outcome.infra_error = f"the sandbox worker answered badly: {outcome.protocol_error}"
            elif outcome.timed_out:
                outcome.infra_error = f"the sandbox worker did not take the job within {timeout:g} s"
            else:
                outcome.infra_error = (
                    f"the sandbox worker failed before running the code (status {outcome.returncode}): "
                    f"{self._stderr_tail() or 'no output'}"
                )
        await self.close()
        return outcome

    async def _reap(self, timeout: float) -> None:
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
            self._read_info()  # closed before it was ready: the info is written early, try now
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
        self.transport.close()
        for fd in (self.capture_fd, self.info_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
