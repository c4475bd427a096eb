"""The fork server's control messages: small fixed-size records on a SOCK_SEQPACKET socket.

The grader (trusted, outside the sandbox) and the zygote (`zygote.py`, inside it) exchange only
these records; a submission's job, code and results never pass through this socket. Used on both
sides of the sandbox, so it imports only the standard library.

Every message is `RECORD` (40 bytes):

    op       u32     what (below)
    child    u32     the grader's number for one forked child (0 for READY)
    value    i64     a pid, an exit status or an errno, depending on `op`
    seconds  f64     a duration (DEADLINE)
    tag      16s     the child's submission tag (SPAWN), ASCII, padded with NUL

grader -> zygote

    SPAWN     fork a child; the message carries exactly three descriptors (SCM_RIGHTS): the job
              pipe's read end, the result pipe's write end, the stdout/stderr capture file
    DEADLINE  kill the child if it still runs `seconds` from now (the job was just handed over)
    KILL      kill the child now

zygote -> grader

    READY     torch imported and warmed up (sent once)
    STARTED   the child runs as `value` (its pid inside the sandbox)
    FAILED    the child could not be started (`value` is the errno); no EXITED follows
    EXITED    the child ended, `value` is its status as bubblewrap reports a worker's: the exit
              code, or 128 + the signal that killed it
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["DEADLINE", "EXITED", "FAILED", "KILL", "Message", "READY", "RECORD", "SPAWN", "SPAWN_FDS", "STARTED", "pack", "unpack"]

RECORD = struct.Struct("=IIqd16s")
SPAWN, DEADLINE, KILL = 1, 2, 3
READY, STARTED, FAILED, EXITED = 11, 12, 13, 14
SPAWN_FDS = 3  # job (read end), result (write end), capture file
_OPS = (SPAWN, DEADLINE, KILL, READY, STARTED, FAILED, EXITED)


@dataclass(frozen=True)
class Message:
    op: int
    child: int = 0
    value: int = 0
    seconds: float = 0.0
    tag: str = ""


def pack(op: int, child: int = 0, value: int = 0, seconds: float = 0.0, tag: str = "") -> bytes:
    return RECORD.pack(op, child, value, seconds, tag.encode("ascii"))


def unpack(data: bytes) -> Message:
    """One record; ValueError if it is not one."""
    if len(data) != RECORD.size:
        raise ValueError(f"a control message of {len(data)} bytes (expected {RECORD.size})")
    op, child, value, seconds, tag = RECORD.unpack(data)
    if op not in _OPS:
        raise ValueError(f"an unknown control message {op}")
    return Message(op, child, value, seconds, tag.rstrip(b"\0").decode("ascii", errors="replace"))
