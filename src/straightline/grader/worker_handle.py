"""A sandboxed worker as the grader sees it: the record protocol of one run, and the `Worker` base.

A worker grades one submission and is never reused. Two kinds share everything here:
`SoloWorker` (`solo_worker.py`: a bubblewrap sandbox of its own) and `ForkedWorker`
(`forked_worker.py`: a child of the fork server's zygote). Both have

    job pipe       the job (one JSON line), then closed (the worker's stdin)
    capture file   the worker's stdout and stderr (a memfd), read after the run; its size is capped
                   by the worker's RLIMIT_FSIZE, so a flood of output costs the grader nothing
    result pipe    the worker's records, read line by line with a size cap

`Worker.run` enforces the wall-clock deadline and the exact order of records (`accepted`, then
either a terminal error record or `start`/`case` for every test case in order, then `done`), and
closes the worker when it ends, for whatever reason. A subclass supplies the process: its exit
status (`returncode`, as bubblewrap reports it: the exit code, or 128 + the killing signal),
`_reap`, `close` (kill it and everything it started, idempotent) and, if its process can be lost
to a failure of the grader's own machinery, `lost`.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any, Self

from .protocol import MAX_LINE_BYTES, ProtocolError, parse_line
from .settings import GraderSettings

__all__ = ["InfrastructureError", "RecordReader", "RunOutcome", "Worker", "connect_reader"]

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


async def connect_reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    """An asyncio reader of lines (at most MAX_LINE_BYTES each) on the read end of a pipe; takes `fd`."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    return reader, transport



class Worker:
    """One submission's sandboxed process (the shared part; see the module docstring).

    Attributes a subclass sets: `tag` (the submission's id), `settings`, `reader` (an
    asyncio.StreamReader on the result pipe), `job_writer` (an asyncio.StreamWriter on the job
    pipe), `capture_fd`, `closed`.
    """

    tag: str
    settings: GraderSettings
    reader: asyncio.StreamReader
    job_writer: asyncio.StreamWriter
    capture_fd: int
    closed: bool

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (the exit code, or 128 + signal), else None."""
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        return not self.closed and self.returncode is None

    @property
    def lost(self) -> str | None:
        """Why the process ended through no doing of its own (the grader's machinery failed), or None."""
        return None

    async def _reap(self, timeout: float) -> None:
        """Wait up to `timeout` s for the exit status of a process that is ending by itself."""
        raise NotImplementedError

    async def close(self) -> None:
        """Kill the process and everything it started, wait until gone, release descriptors. Idempotent."""
        raise NotImplementedError

    def _on_ready(self) -> None:
        """Called once the worker has said `ready` (a hook)."""

    def _job_handed_over(self, timeout: float) -> None:
        """Called as the job is handed over, with the run's wall-clock limit (a hook)."""

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
            tail, code, lost = self._stderr_tail(), self.returncode, self.lost
            await self.close()
            raise InfrastructureError(lost or f"the sandbox worker exited while starting (status {code}): {tail or 'no output'}")
        try:
            parse_line(line.rstrip(b"\n"), None)
        except ProtocolError as exc:
            await self.close()
            raise InfrastructureError(f"the sandbox worker started badly: {exc}") from None
        self._on_ready()

    async def until_ready(self, timeout: float) -> Self:
        """`wait_ready`, and the worker closed (killed) when it fails for any reason, cancellation too."""
        try:
            await self.wait_ready(timeout)
        except BaseException:
            await asyncio.shield(self.close())
            raise
        return self

    async def run(
        self, job: bytes, nonce: str, case_ids: list[str], timeout: float, *, simulation: bool = False
    ) -> RunOutcome:
        """Hand over the job and collect the records until `done`, EOF or the deadline.

        `simulation`: the job is a "run it in the simulation" job (one `run` record, no cases).
        """
        outcome = RunOutcome(tag=self.tag)
        start = time.monotonic()
        try:
            self._job_handed_over(timeout)
            self.job_writer.write(job)
            await self.job_writer.drain()
            self.job_writer.close()
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
        outcome.returncode = self.returncode
        outcome.output, outcome.output_truncated = self._capture(self.settings.output_bytes)
        if not outcome.done and not outcome.timed_out and self.lost is not None:
            outcome.infra_error = self.lost  # not the learner's doing: not an attempt
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

