"""What comes out of the sandbox is parsed strictly: the schema, the nonce, the order."""

from __future__ import annotations

import json
import struct

import pytest

from straightline.grader import GradeResult, TestResult, seccomp
from straightline.grader.protocol import ProtocolError, parse_call_records, parse_line
from straightline.grader.worker_process import RecordReader, RunOutcome

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


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_program_is_well_formed(machine: str) -> None:
    program = seccomp.filter_program(machine)
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
