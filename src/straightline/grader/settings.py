"""Typed configuration of the grader (no environment is read here; the caller decides)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..sizes import GIB, KIB, MIB

__all__ = ["GraderSettings"]


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class GraderSettings:
    """Limits and capacity of the grader.

    max_concurrent     submissions graded at the same time (default: the number of cores)
    max_waiting        submissions waiting for a slot; beyond that a submission is refused (a
                       short queue: a learner told "try again in a few seconds" is better off
                       than one waiting behind a minute of other people's infinite loops)
    max_per_client     jobs (submissions and simulation runs, running or waiting) one client
                       address may have in the grader; more are refused. A client runs at most
                       `client_slots` of them at once, so one address never holds every slot
    run_concurrent     "run it in the simulation" jobs running at once, in slots of their own
                       that grading never waits for (default: half the cores, at least 1)
    run_waiting        simulation jobs waiting for a run slot; beyond that a run is refused
    warm_workers       sandboxed workers kept started with torch imported, waiting for one
                       submission each (default: max_concurrent; 0 starts a worker per submission)
    timeout_s          wall-clock limit of one submission, from the moment its job is handed over
    cpu_seconds        CPU-time limit of one submission (RLIMIT_CPU, on top of the torch import)
    memory_bytes       address-space limit of a worker (RLIMIT_AS); `import torch` needs ~0.6 GiB,
                       the rest is the learner's
    output_bytes       cap on what the learner's code prints (stdout + stderr), and on any file
                       it writes (RLIMIT_FSIZE)
    tmp_bytes          size of the private /tmp inside the sandbox
    open_files         RLIMIT_NOFILE while the learner's code runs
    max_code_bytes     submissions larger than this are refused before anything runs
    startup_timeout_s  how long a worker may take to start and import torch (an infrastructure
                       failure beyond that)
    run_timeout_s      wall-clock limit of a "run it in the simulation" job (training a small
                       model with the learner's loss takes longer than grading)
    run_cpu_seconds    CPU-time limit of such a job
    prepare_simulations  after a passing submission, compute the toolkit's side of that exercise's
                       simulation in the background (the web app: its "run" button then answers
                       sooner); off for scripts and the command line
    unsafe_local       grade without bubblewrap: rlimits and a seccomp filter only, no filesystem or
                       network isolation. For a single learner on their own machine, never a server.
    bwrap              path of the bubblewrap binary (None: looked up on PATH)
    worker_nice        CPU priority of the workers (nice value, 0..19): above 0 the web server in the
                       same machine wins the CPU when both want it; the sandbox cannot lower it again
    process_filter     load the seccomp filter that forbids creating processes (see seccomp.py).
                       Turn it off only to test the other layers (PID namespace, kill on timeout).
    fork_server        grade each submission in a child forked from one long-lived sandbox that
                       imported torch once (fork_server.py; the default), instead of a sandbox per
                       worker (False): a burst of submissions then pays no torch import. Needs bubblewrap and the
                       process filter; if it cannot work on this machine (checked with the first
                       child), the grader logs why and uses a sandbox per worker.
    """

    max_concurrent: int = field(default_factory=_cores)
    max_waiting: int = 16
    max_per_client: int = 2
    run_concurrent: int | None = None
    run_waiting: int = 4
    warm_workers: int | None = None
    timeout_s: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 3 * GIB // 2
    output_bytes: int = 64 * KIB
    tmp_bytes: int = 8 * MIB
    open_files: int = 64
    max_code_bytes: int = 64 * KIB
    startup_timeout_s: float = 90.0
    run_timeout_s: float = 60.0
    run_cpu_seconds: int = 60
    prepare_simulations: bool = False
    unsafe_local: bool = False
    bwrap: str | None = None
    worker_nice: int = 10
    process_filter: bool = True
    fork_server: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("max_concurrent", self.max_concurrent, 1, 256),
            ("max_waiting", self.max_waiting, 0, 100_000),
            ("max_per_client", self.max_per_client, 1, 1000),
            ("run_waiting", self.run_waiting, 0, 100_000),
            ("timeout_s", self.timeout_s, 0.1, 600),
            ("cpu_seconds", self.cpu_seconds, 1, 600),
            ("memory_bytes", self.memory_bytes, 768 * MIB, 64 * GIB),
            ("output_bytes", self.output_bytes, 1 * KIB, 64 * MIB),
            ("tmp_bytes", self.tmp_bytes, 64 * KIB, 1 * GIB),
            ("open_files", self.open_files, 16, 4096),
            ("max_code_bytes", self.max_code_bytes, 1 * KIB, 4 * MIB),
            ("startup_timeout_s", self.startup_timeout_s, 1, 600),
            ("run_timeout_s", self.run_timeout_s, 0.1, 600),
            ("run_cpu_seconds", self.run_cpu_seconds, 1, 600),
            ("worker_nice", self.worker_nice, 0, 19),
        ]
        if self.warm_workers is not None:
            checks.append(("warm_workers", self.warm_workers, 0, 256))
        if self.run_concurrent is not None:
            checks.append(("run_concurrent", self.run_concurrent, 1, 256))
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ValueError(f"GraderSettings.{name} must be in {low}..{high}, got {value!r}")

    @property
    def pool_size(self) -> int:
        """How many warm workers to keep."""
        return self.max_concurrent if self.warm_workers is None else self.warm_workers

    @property
    def client_slots(self) -> int:
        """Grading slots one client address may hold at once: never all of them (when there are two or more)."""
        return min(self.max_per_client, max(1, self.max_concurrent - 1))

    @property
    def run_slots(self) -> int:
        """Simulation runs at once (their own slots, apart from grading's)."""
        return self.run_concurrent if self.run_concurrent is not None else max(1, self.max_concurrent // 2)
