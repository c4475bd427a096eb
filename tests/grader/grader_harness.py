"""Test helpers: grade our own known code in-process (no sandbox), through the same protocol.

`grade_in_process` drives the worker's `process_job` with an in-memory channel, then feeds the
JSON lines through the same `RecordReader` and `build_result` as a sandboxed run. It exists to
test the exercise checks on many variants quickly; it must never see untrusted code.
"""

from __future__ import annotations

import json

import torch

from straightline.grader import GradeResult, GraderSettings, get_exercise
from straightline.grader.inside import probes
from straightline.grader.inside import worker as sandbox_worker
from straightline.grader.protocol import encode_job
from straightline.grader.verdict import build_result
from straightline.grader.worker_handle import RecordReader, RunOutcome

NONCE = "in-process"


class _ListChannel:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.nonce = NONCE

    def send(self, record: dict) -> None:
        self.lines.append((json.dumps({"nonce": self.nonce, **record}, allow_nan=True) + "\n").encode())


def grade_in_process(exercise: str, code: str) -> GradeResult:
    ex = get_exercise(exercise)
    job = json.loads(encode_job(NONCE, ex.function, code, 10, [c.to_json() for c in ex.cases]))
    channel = _ListChannel()
    channel.send({"type": "accepted"})
    state = torch.random.get_rng_state()
    try:
        sandbox_worker.process_job(job, channel, torch, probes)
    finally:
        torch.random.set_rng_state(state)
    outcome = RunOutcome(tag="in-process")
    reader = RecordReader(outcome, NONCE, [c.id for c in ex.cases])
    for line in channel.lines:
        if not reader.feed(line):
            break
    return build_result(ex, code, outcome, GraderSettings())
