"""What comes out of the sandbox is parsed strictly: the schema, the nonce, the order."""

from __future__ import annotations

import json
import struct

import pytest

from straightline.grader import GradeResult, TestResult
from straightline.grader.inside import seccomp
from straightline.grader.protocol import ProtocolError, parse_call_records, parse_line
from straightline.grader.worker_handle import RecordReader, RunOutcome

NONCE = "abc123"


def line(record: dict, nonce: str | None = NONCE) -> bytes:
    return json.dumps({"nonce": nonce, **record} if nonce else record).encode()


def test_ready_is_the_only_record_before_the_job() -> None:
    assert parse_line(b'{"type": "ready"}', None) == {"type": "ready"}
    with pytest.raises(ProtocolError):
        parse_line(line({"type": "done"}), None)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"type": "pass"}',
        line({"type": "done"}, nonce="wrong"),
        json.dumps({"type": "done"}).encode(),
        b"\xff\xfe",
        b"[" * 100_000,
    ],
)
def test_malformed_or_unsigned_lines_are_rejected(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_line(raw, NONCE)


def feed(case_ids: list[str], records: list[dict]) -> RunOutcome:
    outcome = RunOutcome()
    reader = RecordReader(outcome, NONCE, case_ids)
    for record in records:
        if not reader.feed(line(record) + b"\n"):
            break
    return outcome


def test_records_must_come_in_the_workers_order() -> None:
    ok = feed(["a", "b"], [{"type": "accepted"}, {"type": "start", "case": "a"}, {"type": "case", "case": "a", "calls": []},
                           {"type": "start", "case": "b"}, {"type": "case", "case": "b", "calls": []}, {"type": "done"}])
    assert ok.done and ok.protocol_error is None
    for bad in (
        [{"type": "done"}],  # before accepted
        [{"type": "accepted"}, {"type": "done"}],  # done before the tests
        [{"type": "accepted"}, {"type": "start", "case": "b"}],  # out of order
        [{"type": "accepted"}, {"type": "start", "case": "a"}, {"type": "case", "case": "b", "calls": []}],
        [{"type": "accepted"}, {"type": "accepted"}],
        [{"type": "accepted"}, {"type": "syntax_error", "line": 1}, {"type": "start", "case": "a"}],
    ):
        outcome = feed(["a", "b"], bad)
        assert outcome.protocol_error is not None and not outcome.done, bad


def test_call_records_need_consistent_numbers() -> None:
    good = {"calls": [{"output": {"kind": "tensor", "shape": [2], "dtype": "torch.float32", "values": [1.0, 2.0],
                                  "requires_grad": False},
                       "model_calls": [], "noise_calls": [{"shape": [2]}], "seconds": 0.1}]}
    (record,) = parse_call_records(good, 1)
    assert record.output is not None and record.output.values.tolist() == [1.0, 2.0]
    for mutate in (
        lambda c: c["output"].update(values=[1.0]),  # 1 value for shape [2]
        lambda c: c["output"].update(values=["1", 2.0]),
        lambda c: c["output"].update(values=[True, 2.0]),
        lambda c: c["output"].update(requires_grad="yes"),
        lambda c: c["output"].update(kind="verdict"),
        lambda c: c.update(error={"type": "X", "message": "m", "line": 1}),  # both error and output
        lambda c: c.update(model_calls=[{"x": "everything is fine"}]),
        lambda c: c["output"].update(shape=[-1, 2]),
    ):
        bad = json.loads(json.dumps(good))
        mutate(bad["calls"][0])
        with pytest.raises(ProtocolError):
            parse_call_records(bad, 1)
    with pytest.raises(ProtocolError):
        parse_call_records(good, 2)


def test_grade_result_round_trips_through_json() -> None:
    result = GradeResult(
        exercise="cfm_loss",
        status="failed",
        message="Test 2 failed.",
        tests=(TestResult("example", "the example", True, "passed"), TestResult("b", "hidden", False, "failed", "why")),
        line=4,
        output="hello\n",
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["counts_as_attempt"] is True and data["passed"] is False
    assert GradeResult.from_dict(data) == result


@pytest.mark.parametrize("role", seccomp.ROLES)
@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_program_is_well_formed(machine: str, role: str) -> None:
    program = seccomp.filter_program(machine, role=role, pid=4242)
    assert len(program) % 8 == 0 and 10 < len(program) // 8 < 255
    n = len(program) // 8
    for i in range(n):
        code, jt, jf, _k = struct.unpack_from("=HBBI", program, 8 * i)
        if code & 0x07 == 0x05:  # a jump: both targets inside the program
            assert i + 1 + jt < n and i + 1 + jf < n
    last_code = struct.unpack_from("=HBBI", program, 8 * (n - 1))[0]
    assert last_code == 0x06  # ends with a return
    with pytest.raises(seccomp.UnsupportedMachine):
        seccomp.filter_program("sparc")
    with pytest.raises(ValueError, match="accepted: worker, zygote, child"):
        seccomp.filter_program(machine, role="sibling")
    with pytest.raises(ValueError, match="needs its own pid"):
        seccomp.filter_program(machine, role="child")


# ------------------------------------------------------------------------------------------------
# what the filters decide: each program run on made-up system calls by a classic-BPF interpreter

ALLOW, EPERM, ENOSYS, KILL = 0x7FFF0000, 0x00050001, 0x00050026, 0x80000000
ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
NR = {  # (x86_64, aarch64)
    "fork": (57, None), "clone": (56, 220), "clone3": (435, 435), "unshare": (272, 97), "mount": (165, 40),
    "umount2": (166, 39), "ptrace": (101, 117), "kill": (62, 129), "tgkill": (234, 131), "tkill": (200, 130),
    "prlimit64": (302, 261), "setpriority": (141, 140), "sched_setaffinity": (203, 122), "pidfd_open": (434, 434),
    "pidfd_getfd": (438, 438), "kcmp": (312, 272), "clock_gettime": (228, 113), "getpgid": (121, 155),
    "read": (0, 63), "getpid": (39, 172),
}
CLONE_THREAD, CLONE_NEWNS, CLONE_NEWUSER = 0x10000, 0x20000, 0x10000000


def decide(program: bytes, machine: str, call: str, *args: int, arch: int | None = None) -> int:
    """The filter's answer for one system call (args as the registers hold them, 64 bits each)."""
    nr = NR[call][0 if machine == "x86_64" else 1]
    regs = [a & (2**64 - 1) for a in args] + [0] * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, ARCH[machine] if arch is None else arch, 0, *regs)
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("=HBBI", program, 8 * pc)
        if code == 0x20:  # load a word of seccomp_data
            acc, pc = struct.unpack_from("=I", data, k)[0], pc + 1
        elif code == 0x06:
            return k
        else:
            taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_worker_filter_forbids_processes_and_namespaces(machine: str) -> None:
    worker = seccomp.filter_program(machine)
    assert decide(worker, machine, "clone", CLONE_THREAD) == ALLOW  # threads
    assert decide(worker, machine, "clone", 0x11) == EPERM  # a process (SIGCHLD)
    assert decide(worker, machine, "clone3", 0) == ENOSYS
    for call in ("unshare", "mount", "ptrace"):
        assert decide(worker, machine, call, CLONE_NEWNS) == EPERM, call
    assert decide(worker, machine, "kill", 1, 9) == ALLOW  # its own sandbox holds nobody else
    assert decide(worker, machine, "read", 0) == ALLOW
    assert decide(worker, machine, "read", 0, arch=0x40000003) == KILL  # another ABI (i386)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_zygote_may_fork_and_make_exactly_the_childrens_namespaces(machine: str) -> None:
    zygote = seccomp.filter_program(machine, role="zygote")
    assert decide(zygote, machine, "clone", 0x11) == ALLOW
    if machine == "x86_64":
        assert decide(zygote, machine, "fork") == ALLOW
    assert decide(zygote, machine, "unshare", seccomp.CHILD_NAMESPACES) == ALLOW
    for flags in (CLONE_NEWNS, CLONE_NEWUSER, seccomp.CHILD_NAMESPACES | CLONE_NEWUSER):
        assert decide(zygote, machine, "unshare", flags) == EPERM, hex(flags)
    assert decide(zygote, machine, "mount", 0) == ALLOW
    for call in ("umount2", "ptrace"):
        assert decide(zygote, machine, call) == EPERM, call


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_a_childs_filter_lets_it_reach_only_itself(machine: str) -> None:
    me, sibling = 42, 43
    child = seccomp.filter_program(machine, role="child", pid=me)

    def answer(call: str, *args: int) -> int:
        return decide(child, machine, call, *args)

    assert answer("clone", 0x11) == EPERM and answer("clone", CLONE_THREAD) == ALLOW
    for call in ("unshare", "mount", "pidfd_open", "pidfd_getfd", "kcmp", "tkill"):
        assert answer(call, me) == EPERM, call
    assert answer("kill", me, 9) == ALLOW and answer("tgkill", me, me, 6) == ALLOW
    for target in (sibling, 1, 0, -1, -me):  # another process, a process group, everyone
        assert answer("kill", target, 9) == EPERM, target
        assert answer("tgkill", target, target, 9) == EPERM, target
    for call in ("prlimit64", "sched_setaffinity", "getpgid"):
        assert answer(call, 0) == ALLOW and answer(call, me) == ALLOW, call
        assert answer(call, sibling) == EPERM and answer(call, 1) == EPERM, call
    assert answer("setpriority", 0, 0, 10) == ALLOW and answer("setpriority", 0, me, 10) == ALLOW
    assert answer("setpriority", 0, sibling, 10) == EPERM
    assert answer("setpriority", 2, 0, 19) == EPERM  # PRIO_USER: every process of its user
    assert answer("setpriority", 1, 0, 19) == EPERM  # PRIO_PGRP
    assert answer("clock_gettime", 1) == ALLOW and answer("clock_gettime", -6) == ALLOW  # its own CPU clock
    assert answer("clock_gettime", (~sibling << 3) | 2) == EPERM  # a sibling's CPU clock
    # the kernel reads a pid as 32 bits: what is above them does not change the answer
    assert answer("kill", me | (0xFFFFFFFF << 32), 0) == ALLOW and answer("kill", sibling | (1 << 40), 9) == EPERM
    assert answer("read", 0) == ALLOW and answer("getpid") == ALLOW


def test_control_messages_round_trip_and_reject_what_is_not_one() -> None:
    from straightline.grader.inside import control

    data = control.pack(control.SPAWN, 7, seconds=1.5, tag="abc123")
    assert len(data) == control.RECORD.size == 40
    assert control.unpack(data) == control.Message(control.SPAWN, 7, 0, 1.5, "abc123")
    assert control.unpack(control.pack(control.EXITED, 9, 137)).value == 137
    with pytest.raises(ValueError, match="41 bytes"):
        control.unpack(data + b"x")
    with pytest.raises(ValueError, match="unknown control message 99"):
        control.unpack(control.RECORD.pack(99, 0, 0, 0.0, b""))
