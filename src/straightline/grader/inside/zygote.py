"""The fork server ("zygote") inside the sandbox: imports torch once, then forks a child per submission.

This file runs *inside* a bubblewrap sandbox (`sandbox.zygote_command`), as a script next to
`worker.py`, `control.py` and `seccomp.py`; it imports only the standard library, torch
and those files. The zygote is trusted code, and so is each child until the moment the child
executes the learner's code.

    python -I -B zygote.py CONTROL_FD --tag TAG --memory BYTES --output-bytes BYTES
                           --open-files N --nice N --tmp-bytes BYTES --tmp-layout JSON

The zygote never holds a job. A later child inherits the zygote's memory, so anything the zygote
had read (learner A's code) could be read by learner B; instead the grader passes each child's
own descriptors through the zygote (SCM_RIGHTS on CONTROL_FD, see `control.py`), and the child
reads its job itself, after the fork. What the zygote sees is fixed-size control records.

A child, before it reads its job (`_become_child`, in this order):

1. starts its own session (its own process group);
2. names itself after its submission tag (`/proc/PID/comm` outside, so it can be found);
3. keeps only its three descriptors: the job pipe as 0, the capture file as 1 and 2, the result
   pipe as `RESULT_FD` (3); every other inherited descriptor (the control socket, the pidfds of
   its siblings) is closed;
4. enters a new mount, IPC and network namespace (`seccomp.CHILD_NAMESPACES`; the sandbox's user
   namespace gave the zygote CAP_SYS_ADMIN there, and nowhere else) and mounts a fresh,
   size-limited tmpfs on /tmp: a private, empty, writable /tmp that no sibling sees. Read-only
   paths the sandbox mounted under /tmp (a virtual environment in a /tmp checkout) are bound into
   it again, read-only; `--tmp-layout` lists them;
5. sets the worker's limits (`worker.set_limits`: address space, file size, no core
   dumps, RLIMIT_NICE 0; the CPU priority is the zygote's, set once with the same nice value);
6. becomes non-dumpable (PR_SET_DUMPABLE 0), sets no_new_privs, and drops every capability
   (bounding set, ambient, effective, permitted, inheritable: checked afterwards);
7. loads the child's seccomp filter on top of the zygote's (`seccomp.filter_program(role="child")`:
   no processes, no namespaces or mounts, nothing that targets another process);

then says `ready` on RESULT_FD and runs the job exactly as a per-worker sandbox does
(`worker.serve_job`: CPU and open-files limits at job time, the same records).

The zygote kills a child when the grader asks (KILL), when the DEADLINE the grader set passes, and
all of them when the grader goes away (EOF on CONTROL_FD). It reaps them through pidfds and
reports each exit status.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass

RESULT_FD = 3
STAGE = "/tmp/.child-tmp"  # in the zygote's /tmp; each child mounts its own /tmp here first

# from <linux/sched.h>, <sys/mount.h>, <linux/prctl.h>, <linux/capability.h>
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x2000, 0x4000, 0x40000
_PR_SET_DUMPABLE, _PR_SET_NAME, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT = 4, 15, 24, 38, 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522


class _Libc:
    """The few libc calls the standard library lacks, raising OSError on failure."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)

    def call(self, name: str, *args) -> int:
        result = getattr(self.lib, name)(*args)
        if result == -1:
            err = ctypes.get_errno()
            raise OSError(err, f"{name}: {os.strerror(err)}")
        return result


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _place_descriptors(fds: list[int]) -> None:
    """job -> 0, capture -> 1 and 2, result -> RESULT_FD; every other descriptor closed."""
    import fcntl

    # first a copy above RESULT_FD of each, so that no dup2 below overwrites one still to be placed
    job, result, capture = (fcntl.fcntl(fd, fcntl.F_DUPFD, RESULT_FD + 1) for fd in fds)
    for target, fd in ((0, job), (1, capture), (2, capture), (RESULT_FD, result)):
        os.dup2(fd, target)
    os.closerange(RESULT_FD + 1, 1 << 20)


def _private_tmp(libc: _Libc, tmp_bytes: int, layout: dict) -> None:
    """New mount, IPC and network namespaces, and a fresh tmpfs as /tmp (see the module docstring)."""
    import seccomp

    libc.call("unshare", seccomp.CHILD_NAMESPACES)
    libc.call("mount", None, b"/", None, _MS_REC | _MS_PRIVATE, None)  # nothing we mount propagates out
    options = f"size={tmp_bytes},mode=0700".encode()
    libc.call("mount", b"tmpfs", STAGE.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options)
    for path in layout.get("binds", []):  # read-only mounts that lived under the zygote's /tmp
        target = STAGE + path[len("/tmp"):]
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:  # a file (pyvenv.cfg): the mount point is an empty file
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600))
        libc.call("mount", path.encode(), target.encode(), None, _MS_BIND | _MS_REC, None)
    for target, link in layout.get("symlinks", []):
        where = STAGE + link[len("/tmp"):]
        os.makedirs(os.path.dirname(where), exist_ok=True)
        os.symlink(target, where)
    libc.call("mount", STAGE.encode(), b"/tmp", None, _MS_MOVE, None)
    os.chdir("/tmp")


def _drop_privileges(libc: _Libc) -> None:
    """Non-dumpable, no_new_privs, and no capability left in any set (checked)."""
    libc.call("prctl", _PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.call("prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for cap in range(64):
        if libc.lib.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == errno.EINVAL:
                break  # past the last capability this kernel knows
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap}) failed")
    libc.call("prctl", _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    libc.call("capset", ctypes.byref(header), ctypes.byref((_CapData * 2)()))
    data = (_CapData * 2)()
    libc.call("capget", ctypes.byref(header), ctypes.byref(data))
    if any(d.effective or d.permitted or d.inheritable for d in data):
        raise RuntimeError("capabilities left after dropping them")


def _become_child(fds: list[int], tag: str, opts: dict, torch, probes) -> None:
    """Everything a fresh child does before and while it runs its one job; never returns."""
    import worker
    import seccomp

    libc = _Libc()
    os.setsid()
    libc.call("prctl", _PR_SET_NAME, tag.encode()[:15], 0, 0, 0)
    _place_descriptors(fds)
    _private_tmp(libc, int(opts["tmp_bytes"]), opts.get("tmp_layout") or {})
    worker.set_limits(int(opts["memory"]), int(opts["output_bytes"]))
    _drop_privileges(libc)
    worker.load_filter(seccomp.filter_program(role="child", pid=os.getpid()))
    channel = worker.Channel(RESULT_FD)
    channel.send({"type": "ready"})
    worker.serve_job(channel, torch, probes, int(opts["open_files"]))


@dataclass
class _Child:
    number: int  # the grader's id for it
    pid: int
    pidfd: int
    deadline: float | None = None  # time.monotonic() after which it is killed


class ZygoteLoop:
    """The control loop: fork on SPAWN, kill on KILL or at the deadline, report exits."""

    def __init__(self, control: socket.socket, opts: dict, torch, probes):
        import control as messages

        self.messages = messages
        self.control, self.opts, self.torch, self.probes = control, opts, torch, probes
        self.children: dict[int, _Child] = {}
        self.selector = selectors.DefaultSelector()

    def send(self, op: int, child: int = 0, value: int = 0) -> None:
        self.control.send(self.messages.pack(op, child, value))

    def serve(self) -> None:
        self.selector.register(self.control, selectors.EVENT_READ, None)
        self.send(self.messages.READY)
        while True:
            now = time.monotonic()
            deadlines = [c.deadline for c in self.children.values() if c.deadline is not None]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            for key, _ in self.selector.select(timeout):
                if key.data is None:
                    if not self._on_control():
                        self._kill_all()
                        return
                else:
                    self._reap(key.data)
            now = time.monotonic()
            for child in list(self.children.values()):
                if child.deadline is not None and now >= child.deadline:
                    child.deadline = None
                    _kill(child.pid)

    def _on_control(self) -> bool:
        """Handle one message; False when the grader has gone away."""
        m = self.messages
        data, fds, _flags, _addr = socket.recv_fds(self.control, m.RECORD.size + 1, m.SPAWN_FDS + 1)
        if not data:
            return False
        try:
            message = m.unpack(data)
        except ValueError:
            message = None
        if message is not None and message.op == m.SPAWN and len(fds) == m.SPAWN_FDS and message.child not in self.children:
            self._spawn(message, fds)
            return True
        for fd in fds:
            os.close(fd)
        if message is None:
            return True
        child = self.children.get(message.child)
        if message.op == m.SPAWN:
            self.send(m.FAILED, message.child, errno.EINVAL)
        elif child is not None and message.op == m.KILL:
            _kill(child.pid)
        elif child is not None and message.op == m.DEADLINE:
            child.deadline = time.monotonic() + max(0.0, message.seconds)
        return True

    def _spawn(self, message, fds: list[int]) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send(self.messages.FAILED, message.child, exc.errno or errno.EAGAIN)
            return
        if pid == 0:
            try:
                self.selector.close()
                self.control.close()
                self.children.clear()  # nothing of the siblings stays reachable from the learner's frames
                _become_child(fds, message.tag, self.opts, self.torch, self.probes)
            except BaseException:  # noqa: BLE001 - before the learner's code: report on stderr
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)  # the child has its copies; ours would keep the pipes from reaching EOF
        pidfd = os.pidfd_open(pid)
        self.children[message.child] = _Child(message.child, pid, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, message.child)
        self.send(self.messages.STARTED, message.child, pid)

    def _reap(self, number: int) -> None:
        child = self.children.pop(number)
        self.selector.unregister(child.pidfd)
        os.close(child.pidfd)
        _, status = os.waitpid(child.pid, 0)
        if os.WIFSIGNALED(status):
            code = 128 + os.WTERMSIG(status)
        else:
            code = os.WEXITSTATUS(status)
        self.send(self.messages.EXITED, number, code)

    def _kill_all(self) -> None:
        for child in self.children.values():
            _kill(child.pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import worker

    opts = worker.parse_args(argv, "control_fd", {"--tmp-bytes": int, "--tmp-layout": json.loads})
    os.nice(int(opts["nice"]))  # the children inherit it; lowering it again needs a capability
    control = socket.socket(fileno=int(opts["control_fd"]))
    torch, probes = worker.warm_up()
    os.mkdir(STAGE, 0o700)
    gc.collect()
    gc.freeze()  # what the zygote built stays out of the children's collections (and unshared pages)
    ZygoteLoop(control, opts, torch, probes).serve()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BaseException:  # noqa: BLE001 - the grader reads this from the zygote's output
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
