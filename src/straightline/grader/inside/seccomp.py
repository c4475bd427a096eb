"""Small seccomp-BPF filters for the sandbox: no new processes, no namespace or kernel tricks.

One assembler builds three filters, one per `role`:

- ``"worker"`` (a sandbox per submission; bubblewrap loads it with `--seccomp FD` just before it
  executes the worker, so it binds the worker and everything the learner's code does). It allows
  every system call except:

  - process creation: `fork`, `vfork`, and `clone` without `CLONE_THREAD` fail with EPERM; `clone3`
    fails with ENOSYS, which makes the C library fall back to `clone` (threads keep working, since a
    thread is a `clone` with `CLONE_THREAD`). A fork bomb therefore cannot start, and nothing can
    leave the sandbox's process tree;
  - namespace, mount and kernel-interface calls a grader never needs (`unshare`, `setns`, `mount`,
    `ptrace`, `bpf`, `perf_event_open`, `userfaultfd`, `io_uring_*`, keyrings, module loading, ...):
    EPERM;
  - any call made through another ABI (i386 `int 0x80`, x32): the process is killed.

- ``"zygote"`` (the fork server's sandbox, `zygote.py`): the worker's filter, except that it may
  create processes (`fork`, `vfork`, `clone`), and that `unshare` is allowed with exactly
  `CHILD_NAMESPACES` and `mount` is allowed: what each forked child needs to get its private /tmp,
  network and IPC namespace before it drops its capabilities. Only trusted code runs under this
  filter alone.

- ``"child"`` (a child of the fork server, loaded by the child itself on top of the zygote's
  filter; stacked filters all apply, the strictest answer wins): the worker's filter, plus
  everything that could reach a sibling or the zygote, which share the child's user ID and PID
  namespace. Denied outright: `tkill`, `pidfd_open`, `pidfd_getfd`, `pidfd_send_signal`,
  `process_madvise`, `process_mrelease`, `kcmp`, `ioprio_set`, `ioprio_get`, `migrate_pages`,
  `move_pages`, `get_robust_list`. Allowed only when they name the process itself (`pid`, or 0
  where 0 means "me"): `kill`, `tgkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo` (own pid only: 0
  or -1 would mean a process group or everyone), `prlimit64`, `getpgid`, `getsid` and the
  `sched_*` calls that take a pid, and `getpriority` / `setpriority` with `PRIO_PROCESS` only (a
  `PRIO_USER` call would reach every process of the sandbox's user). The CPU clocks of other
  processes (`clock_gettime` and friends with a pid-encoded clock id) are refused too: they would
  let a child watch a sibling's CPU use.

The program is assembled here by hand (classic BPF, 8 bytes per instruction) so the grader needs
no libseccomp binding. `filter_program()` returns the bytes bubblewrap reads from the descriptor
(or that `worker.load_filter` hands to the kernel). It imports only the standard library:
the fork server's children run it inside the sandbox, next to the worker.
"""

from __future__ import annotations

import errno
import platform
import struct

__all__ = ["CHILD_NAMESPACES", "ROLES", "filter_program", "supported_machine", "UnsupportedMachine"]

ROLES = ("worker", "zygote", "child")

# classic BPF opcodes
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGT_K = 0x25  # BPF_JMP | BPF_JGT | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

# offsets in struct seccomp_data
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0_LOW = 16  # little-endian: the low 32 bits of args[0]; args[i] is 8 bytes further each

_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000

# what a child of the fork server unshares (mount, IPC, network): the zygote's filter allows this
# exact set of flags and nothing else
CHILD_NAMESPACES = 0x00020000 | 0x08000000 | 0x40000000  # CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET

# syscalls that fail with EPERM (besides clone/fork handling), per machine
_DENIED = {
    "x86_64": {
        "fork": 57, "vfork": 58, "ptrace": 101, "pivot_root": 155, "mount": 165, "umount2": 166,
        "init_module": 175, "delete_module": 176, "kexec_load": 246, "add_key": 248,
        "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
        "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
        "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    },
    "aarch64": {
        "umount2": 39, "mount": 40, "pivot_root": 41, "unshare": 97, "kexec_load": 104,
        "init_module": 105, "delete_module": 106, "ptrace": 117, "add_key": 217,
        "request_key": 218, "keyctl": 219, "perf_event_open": 241, "setns": 268,
        "process_vm_readv": 270, "process_vm_writev": 271, "finit_module": 273,
        "kexec_file_load": 294, "bpf": 280, "userfaultfd": 282, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    },
}
# calls that take another process as their target: a child of the fork server gets these through
# `_CHILD_DENIED` (refused) or `_CHILD_RULES` (only for itself)
_CROSS_PROCESS = {
    "x86_64": {
        "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
        "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438, "process_madvise": 440,
        "process_mrelease": 448, "kcmp": 312, "getpriority": 140, "setpriority": 141,
        "sched_setparam": 142, "sched_getparam": 143, "sched_setscheduler": 144,
        "sched_getscheduler": 145, "sched_rr_get_interval": 148, "sched_setaffinity": 203,
        "sched_getaffinity": 204, "sched_setattr": 314, "sched_getattr": 315, "ioprio_set": 251,
        "ioprio_get": 252, "migrate_pages": 256, "move_pages": 279, "get_robust_list": 274,
        "prlimit64": 302, "getpgid": 121, "getsid": 124, "timer_create": 222, "clock_gettime": 228,
        "clock_getres": 229, "clock_nanosleep": 230,
    },
    "aarch64": {
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438, "process_madvise": 440,
        "process_mrelease": 448, "kcmp": 272, "setpriority": 140, "getpriority": 141,
        "sched_setparam": 118, "sched_setscheduler": 119, "sched_getscheduler": 120,
        "sched_getparam": 121, "sched_rr_get_interval": 127, "sched_setaffinity": 122,
        "sched_getaffinity": 123, "sched_setattr": 274, "sched_getattr": 275, "ioprio_set": 30,
        "ioprio_get": 31, "migrate_pages": 238, "move_pages": 239, "get_robust_list": 100,
        "prlimit64": 261, "getpgid": 155, "getsid": 156, "timer_create": 107, "clock_gettime": 113,
        "clock_getres": 114, "clock_nanosleep": 115,
    },
}
_CHILD_DENIED = (
    "tkill", "pidfd_send_signal", "pidfd_open", "pidfd_getfd", "process_madvise", "process_mrelease",
    "kcmp", "ioprio_set", "ioprio_get", "migrate_pages", "move_pages", "get_robust_list",
)
_PID = "pid"  # in a rule: the child's own process ID (known only when its filter is built)
_PRIO_PROCESS = 0
# clock ids >= 0 are the fixed clocks; -8..-1 are the CPU clocks of the calling process / thread;
# anything else below 0 encodes another process's pid (or a clock device's descriptor)
_OWN_CLOCKS = ((0, 0x7FFFFFFF), (0xFFFFFFF8, 0xFFFFFFFF))
# call -> ((argument index, allowed values of its low 32 bits: numbers, _PID, or (low, high) ranges), ...)
_CHILD_RULES: dict[str, tuple[tuple[int, tuple], ...]] = {
    **{name: ((0, (_PID,)),) for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")},
    **{
        name: ((0, (0, _PID)),)
        for name in (
            "prlimit64", "getpgid", "getsid", "sched_setparam", "sched_getparam", "sched_setscheduler",
            "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_getaffinity",
            "sched_setattr", "sched_getattr",
        )
    },
    **{name: ((0, (_PRIO_PROCESS,)), (1, (0, _PID))) for name in ("getpriority", "setpriority")},
    **{name: ((0, _OWN_CLOCKS),) for name in ("timer_create", "clock_gettime", "clock_getres", "clock_nanosleep")},
}
_ZYGOTE_ALLOWED = ("fork", "vfork", "mount", "unshare")  # taken off the denied list for the zygote
_ZYGOTE_RULES: dict[str, tuple[tuple[int, tuple], ...]] = {"unshare": ((0, (CHILD_NAMESPACES,)),)}
_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


class UnsupportedMachine(RuntimeError):
    """The filter has no syscall table for this machine."""


def supported_machine(machine: str | None = None) -> bool:
    """Whether `filter_program` knows this machine (default: the one we run on)."""
    return (machine or platform.machine()) in _AUDIT_ARCH


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _ranges(allowed: tuple, pid: int | None) -> list[tuple[int, int]]:
    """Allowed values of an argument as inclusive (low, high) ranges of its low 32 bits."""
    out = []
    for value in allowed:
        if value == _PID:
            assert pid is not None
            value = pid
        out.append(value if isinstance(value, tuple) else (value, value))
    return out


def _policy(machine: str, role: str, pid: int | None) -> tuple[list[int], dict[int, list], bool]:
    """(denied syscall numbers, {syscall number: [(argument index, ranges)]}, processes allowed)."""
    denied = dict(_DENIED[machine])
    rules: dict[str, tuple[tuple[int, tuple], ...]] = {}
    if role == "zygote":
        for name in _ZYGOTE_ALLOWED:
            denied.pop(name, None)
        rules = _ZYGOTE_RULES
    elif role == "child":
        cross = _CROSS_PROCESS[machine]
        denied.update({name: cross[name] for name in _CHILD_DENIED})
        rules = _CHILD_RULES
    numbers = {**_DENIED[machine], **_CROSS_PROCESS[machine]}
    compiled = {numbers[name]: [(arg, _ranges(allowed, pid)) for arg, allowed in conditions] for name, conditions in rules.items()}
    return sorted(denied.values()), compiled, role == "zygote"


def filter_program(machine: str | None = None, *, role: str = "worker", pid: int | None = None) -> bytes:
    """The filter as raw `struct sock_filter` instructions (see the module docstring for the roles).

    `pid` is required for the ``"child"`` role: the child's own process ID, as it sees it.
    """
    machine = machine or platform.machine()
    _check_request(machine, role, pid)
    denied, rules, processes = _policy(machine, role, pid)
    # Layout: load arch, check it; load nr, [x32 check]; one JEQ per denied call; one JEQ per call
    # with a rule; [JEQ clone]; JEQ clone3; RET allow; each rule's argument checks; [clone: load
    # arg0, JSET CLONE_THREAD, RET allow]; then the shared returns EPERM, ENOSYS, KILL. Classic
    # BPF only jumps forward, so the returns come last.
    prog = _Program()
    _dispatch(prog, machine, denied, rules, processes)
    for nr in sorted(rules):
        _rule_checks(prog, nr, rules[nr])
    if not processes:
        prog.label("clone")
        prog.emit(_LD_W_ABS, _OFF_ARG0_LOW)
        prog.emit(_JSET_K, _CLONE_THREAD, "thread", "eperm")
        prog.label("thread")
        prog.emit(_RET_K, _RET_ALLOW)
    for name, value in (("eperm", _RET_ERRNO | errno.EPERM), ("enosys", _RET_ERRNO | errno.ENOSYS), ("kill", _RET_KILL_PROCESS)):
        prog.label(name)
        prog.emit(_RET_K, value)
    return prog.assemble()


def _check_request(machine: str, role: str, pid: int | None) -> None:
    if machine not in _AUDIT_ARCH:
        raise UnsupportedMachine(f"no seccomp syscall table for machine {machine!r}; known: {', '.join(_AUDIT_ARCH)}")
    if role not in ROLES:
        raise ValueError(f"unknown seccomp role {role!r}; accepted: {', '.join(ROLES)}")
    if role == "child" and not (isinstance(pid, int) and 0 < pid < 2**31):
        raise ValueError(f"the child's filter needs its own pid (1..{2**31 - 1}), got {pid!r}")


class _Program:
    """Instructions with jumps to named labels, resolved into forward offsets by `assemble`."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, str | None, str | None]] = []  # (code, k, jt label, jf label)
        self.labels: dict[str, int] = {}

    def emit(self, code: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        self.code.append((code, k, jt, jf))

    def label(self, name: str) -> None:
        """`name` is the next instruction."""
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = []
        for i, (code, k, jt, jf) in enumerate(self.code):
            offsets = []
            for label in (jt, jf):
                if label is None:
                    offsets.append(0)
                else:
                    delta = self.labels[label] - (i + 1)
                    assert 0 <= delta <= 255, (label, delta)
                    offsets.append(delta)
            out.append(_insn(code, k, offsets[0], offsets[1]))
        return b"".join(out)


def _dispatch(prog: _Program, machine: str, denied, rules, processes: bool) -> None:
    """The architecture check, then a jump per syscall that is denied or has a rule; else allow."""
    prog.emit(_LD_W_ABS, _OFF_ARCH)
    prog.emit(_JEQ_K, _AUDIT_ARCH[machine], None, "kill")
    prog.emit(_LD_W_ABS, _OFF_NR)
    if machine == "x86_64":
        prog.emit(_JGE_K, _X32_SYSCALL_BIT, "kill", None)
    for nr in denied:
        prog.emit(_JEQ_K, nr, "eperm", None)
    for nr in sorted(rules):
        prog.emit(_JEQ_K, nr, f"rule{nr}", None)
    if not processes:
        prog.emit(_JEQ_K, _CLONE[machine], "clone", None)
    prog.emit(_JEQ_K, _CLONE3, "enosys", None)
    prog.emit(_RET_K, _RET_ALLOW)


def _rule_checks(prog: _Program, nr: int, conditions) -> None:
    """Every condition must hold (AND); a condition holds when its argument is in one of its ranges."""
    prog.label(f"rule{nr}")
    for c, (arg, ranges) in enumerate(conditions):
        passed, failed = f"rule{nr}-{c + 1}", "eperm"
        prog.emit(_LD_W_ABS, _OFF_ARG0_LOW + 8 * arg)
        for r, (low, high) in enumerate(ranges):
            prog.label(f"rule{nr}-{c}-{r}")
            other = f"rule{nr}-{c}-{r + 1}" if r + 1 < len(ranges) else failed
            if low == high:
                prog.emit(_JEQ_K, low, passed, other)
            else:
                prog.emit(_JGE_K, low, None, other)
                prog.emit(_JGT_K, high, other, passed)
        prog.label(passed)
    prog.emit(_RET_K, _RET_ALLOW)
