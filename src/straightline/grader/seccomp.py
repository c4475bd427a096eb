"""A small seccomp-BPF filter for the sandbox: no new processes, no namespace or kernel tricks.

bubblewrap loads the filter (`--seccomp FD`) just before it executes the worker, so it binds the
worker and everything the learner's code does. The filter allows every system call except:

- process creation: `fork`, `vfork`, and `clone` without `CLONE_THREAD` fail with EPERM; `clone3`
  fails with ENOSYS, which makes the C library fall back to `clone` (threads keep working, since a
  thread is a `clone` with `CLONE_THREAD`). A fork bomb therefore cannot start, and nothing can
  leave the sandbox's process tree;
- namespace, mount and kernel-interface calls a grader never needs (`unshare`, `setns`, `mount`,
  `ptrace`, `bpf`, `perf_event_open`, `userfaultfd`, `io_uring_*`, keyrings, module loading, ...):
  EPERM;
- any call made through another ABI (i386 `int 0x80`, x32): the process is killed.

The program is assembled here by hand (classic BPF, 8 bytes per instruction) so the grader needs
no libseccomp binding. `filter_program()` returns the bytes bubblewrap reads from the descriptor.
"""

from __future__ import annotations

import errno
import platform
import struct

__all__ = ["filter_program", "supported_machine", "UnsupportedMachine"]

# classic BPF opcodes
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

# offsets in struct seccomp_data
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0_LOW = 16  # little-endian: the low 32 bits of args[0]

_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000

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


def filter_program(machine: str | None = None) -> bytes:
    """The filter as raw `struct sock_filter` instructions, for `bwrap --seccomp FD`."""
    machine = machine or platform.machine()
    if machine not in _AUDIT_ARCH:
        raise UnsupportedMachine(f"no seccomp syscall table for machine {machine!r}; known: {', '.join(_AUDIT_ARCH)}")
    denied = sorted(_DENIED[machine].values())
    # Layout: load arch, check it; load nr, [x32 check]; one JEQ per denied call; JEQ clone;
    # JEQ clone3; RET allow; clone: load arg0, JSET CLONE_THREAD, RET allow; then the shared
    # returns EPERM, ENOSYS, KILL. Classic BPF only jumps forward, so the returns come last.
    prog: list[tuple[int, int, str | None, str | None]] = []  # (code, k, jt label, jf label)
    labels: dict[str, int] = {}

    def emit(code: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        prog.append((code, k, jt, jf))

    emit(_LD_W_ABS, _OFF_ARCH)
    emit(_JEQ_K, _AUDIT_ARCH[machine], None, "kill")
    emit(_LD_W_ABS, _OFF_NR)
    if machine == "x86_64":
        emit(_JGE_K, _X32_SYSCALL_BIT, "kill", None)
    for nr in denied:
        emit(_JEQ_K, nr, "eperm", None)
    emit(_JEQ_K, _CLONE[machine], "clone", None)
    emit(_JEQ_K, _CLONE3, "enosys", None)
    emit(_RET_K, _RET_ALLOW)
    labels["clone"] = len(prog)
    emit(_LD_W_ABS, _OFF_ARG0_LOW)
    emit(_JSET_K, _CLONE_THREAD, "thread", "eperm")
    labels["thread"] = len(prog)
    emit(_RET_K, _RET_ALLOW)
    labels["eperm"] = len(prog)
    emit(_RET_K, _RET_ERRNO | errno.EPERM)
    labels["enosys"] = len(prog)
    emit(_RET_K, _RET_ERRNO | errno.ENOSYS)
    labels["kill"] = len(prog)
    emit(_RET_K, _RET_KILL_PROCESS)

    out = []
    for i, (code, k, jt, jf) in enumerate(prog):
        offsets = []
        for label in (jt, jf):
            if label is None:
                offsets.append(0)
            else:
                delta = labels[label] - (i + 1)
                assert 0 <= delta <= 255, (label, delta)
                offsets.append(delta)
        out.append(_insn(code, k, offsets[0], offsets[1]))
    return b"".join(out)
