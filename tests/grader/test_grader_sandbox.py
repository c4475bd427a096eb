"""The real sandbox: correct code passes, hostile code is contained, graded as a failure, leaks
nothing, leaves no process behind, and does not stop the process around the grader from working."""

from __future__ import annotations

import asyncio
import http.server
import secrets
import socket
import stat
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import pytest

import grader_attacks as attacks
import straightline
from grader_support import needs_bwrap, processes_with
from grader_variants import CFM_BUGS, CFM_CORRECT, EULER_CORRECT, WEIGHTED_CORRECT
from straightline.grader import (
    Grader,
    GraderSettings,
    GraderUnavailable,
    LearnerBusy,
    QueueFull,
    SubmissionTooLarge,
    UnknownExercise,
)

pytestmark = needs_bwrap


# ------------------------------------------------------------------------------------------------
# helpers


@dataclass
class Graded:
    result: object
    leftovers: list = field(default_factory=list)  # processes of the sandbox right after the result


async def _submit(grader: Grader, learner: str, exercise: str, code: str) -> Graded:
    result = await grader.submit(learner, exercise, code)
    return Graded(result, processes_with(result.submission_id) if result.submission_id else [])


def _run_all(grader: Grader, jobs: dict[str, tuple[str, str]]) -> dict[str, Graded]:
    async def main() -> dict[str, Graded]:
        names = list(jobs)
        graded = await asyncio.gather(*(_submit(grader, f"learner-{n}", *jobs[n]) for n in names))
        return dict(zip(names, graded))

    return asyncio.run(main())


class _Bait:
    """A TCP listener on every interface that counts connections (none may arrive)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def _host_ip() -> str:
    """A non-loopback address of this machine (for the socket attack), if there is one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent; this only picks a route
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"ok"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _PageLoad:
    """A tiny HTTP server in this process, and a client thread asking it for a page every 20 ms."""

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._client, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _client(self) -> None:
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    assert response.read() == b"ok"
                self.latencies.append(time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 - recorded, asserted on
                self.errors.append(repr(exc))
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        self.threads[1].join()
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------------
# legitimate submissions


@pytest.fixture(scope="module")
def legit(sandbox_grader: Grader) -> dict[str, Graded]:
    jobs = {
        "cfm": ("cfm_loss", CFM_CORRECT["mse-loss-reshape"]),
        "weighted": ("weighted_cfm_loss", WEIGHTED_CORRECT["per-example"]),
        "euler": ("euler_sample", EULER_CORRECT["linspace-expand"]),
        "bug": ("cfm_loss", CFM_BUGS["target-reversed"][0]),
        "syntax": ("euler_sample", "import torch\n\ndef euler_sample(model, x_0, steps):\n    for k in range(steps)\n        pass\n"),
    }
    return _run_all(sandbox_grader, jobs)


@pytest.mark.parametrize("name", ["cfm", "weighted", "euler"])
def test_correct_solutions_pass_in_the_sandbox(legit: dict[str, Graded], name: str) -> None:
    graded = legit[name]
    assert graded.result.status == "passed", graded.result.message
    assert graded.result.counts_as_attempt and graded.result.warning is None
    assert graded.leftovers == []


def test_a_classic_bug_fails_in_the_sandbox_with_its_message(legit: dict[str, Graded]) -> None:
    result = legit["bug"].result
    assert result.status == "failed" and "target points the wrong way" in result.message
    assert result.tests[0].status == "failed" and result.counts_as_attempt


def test_the_grader_runs_in_the_mode_it_was_asked_for(sandbox_grader: Grader, legit: dict[str, Graded]) -> None:
    server = sandbox_grader.fork_server
    if sandbox_grader.settings.fork_server:
        assert server is not None and server.active and server.unavailable is None
        assert server.starts == 1
        # each submission was a child of the zygote: it named itself after its tag
        assert all(len(g.result.submission_id) == 14 for g in legit.values())
    else:
        assert server is None
        assert all(len(g.result.submission_id) == 16 for g in legit.values())


def test_a_syntax_error_names_its_line(legit: dict[str, Graded]) -> None:
    result = legit["syntax"].result
    assert result.status == "syntax_error" and result.line == 4
    assert result.message.startswith("Syntax error at line 4") and "for k in range(steps)" in result.message
    assert all(t.status == "not_run" for t in result.tests)


# ------------------------------------------------------------------------------------------------
# attacks, all at once, while a page server in this process keeps answering


MEMORY_BOMB_ONCE = attacks.MEMORY_BOMB.replace(
    "    hoard = []\n",
    "    try:\n        torch.ones(10**6, 10**6)\n    except RuntimeError:\n        print('tensor bomb refused')\n"
    "    if getattr(torch, '_bombed', False):\n        return torch.zeros(())\n    torch._bombed = True\n    hoard = []\n",
)
FORK_AND_SPAWN = attacks.FORK_BOMB.replace(
    "    children = 0\n",
    "    import subprocess\n    try:\n        subprocess.run(['/bin/sh', '-c', 'sleep 1000 &'])\n    except OSError:\n"
    "        print('spawn blocked')\n    children = 0\n",
)


@dataclass
class AttackRun:
    graded: dict[str, Graded]
    bait_connections: int
    page: _PageLoad
    secrets: dict[str, str]
    written: list[Path]
    seconds: float


@pytest.fixture(scope="module")
def attack_run(sandbox_grader: Grader, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AttackRun]:
    tmp = tmp_path_factory.mktemp("attacks")
    marker = secrets.token_hex(8)  # file contents; file names use `tag`, which may be printed
    tag = secrets.token_hex(4)
    fake_db = tmp / "progress.db"
    fake_db.write_text(f"SECRET-PROGRESS-{marker}")
    other = tmp / "learner-2-submission.py"
    other.write_text(f"SECRET-SUBMISSION-{marker}")
    data_dir = Path(platformdirs.user_data_dir("straightline", appauthor=False))
    created_dir = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    real_data_file = data_dir / f"grader-test-{tag}.db"
    real_data_file.write_text(f"SECRET-DATADIR-{marker}")
    source = Path(straightline.__file__).resolve().parent
    read_targets = [
        str(fake_db),
        str(other),
        str(real_data_file),
        str(data_dir / "progress.db"),
        "/etc/shadow",
        "/etc/passwd",
        str(source / "__init__.py"),
        str(source / "grader" / "grader.py"),
        str(Path.home() / ".bash_history"),
    ]
    written = [tmp / "written-by-sandbox", source / "grader" / f"evil-{tag}.py", data_dir / f"evil-{tag}"]
    write_targets = [str(p) for p in written] + ["/evil", "/dev/shm/evil", "/opt/straightline-grader/probes.py"]

    bait = _Bait()
    page = _PageLoad()
    fill = {
        "host_ip": _host_ip(),
        "port": bait.port,
        "targets": read_targets,
        "dirs": ["/", "/root", "/home", "/work", "/etc", "/var", "/proc", "/sys", "/usr/bin", str(source), str(source.parent), str(tmp)],
    }
    jobs = {
        "infinite_loop": attacks.INFINITE_LOOP,
        "infinite_loop_at_import": attacks.INFINITE_LOOP_AT_IMPORT,
        "memory_bomb": MEMORY_BOMB_ONCE,
        "fork_bomb": FORK_AND_SPAWN,
        "socket": attacks.SOCKET.format(**fill),
        "read_files": attacks.READ_FILES.format(**fill),
        "write_files": attacks.WRITE_FILES.format(targets=write_targets),
        "output_flood": attacks.OUTPUT_FLOOD,
        "sys_exit_at_import": attacks.SYS_EXIT_AT_IMPORT,
        "sys_exit_in_function": attacks.SYS_EXIT_IN_FUNCTION,
        "os_exit": attacks.OS_EXIT,
        "monkeypatch": attacks.MONKEYPATCH,
        "fake_pass_print": attacks.FAKE_PASS_PRINT,
        "lying_object": attacks.LYING_OBJECT,
        "lying_exception": attacks.LYING_EXCEPTION,
        "result_channel_blind": attacks.RESULT_CHANNEL_BLIND.format(),
        "result_channel_forged": attacks.RESULT_CHANNEL_FORGED.format(),
    }
    start = time.monotonic()
    try:
        graded = _run_all(sandbox_grader, {name: ("cfm_loss", code) for name, code in jobs.items()})
        seconds = time.monotonic() - start
    finally:
        page.close()
        bait.close()
    yield AttackRun(
        graded=graded,
        bait_connections=bait.connections,
        page=page,
        secrets={"marker": marker},
        written=written,
        seconds=seconds,
    )
    real_data_file.unlink(missing_ok=True)
    for p in written:
        p.unlink(missing_ok=True)
    if created_dir:
        try:
            data_dir.rmdir()
        except OSError:
            pass


ATTACKS = [
    "infinite_loop",
    "infinite_loop_at_import",
    "memory_bomb",
    "fork_bomb",
    "socket",
    "read_files",
    "write_files",
    "sys_exit_at_import",
    "sys_exit_in_function",
    "os_exit",
    "monkeypatch",
    "fake_pass_print",
    "lying_object",
    "lying_exception",
    "result_channel_blind",
    "result_channel_forged",
]


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_graded_as_a_failure_and_leaves_no_process(attack_run: AttackRun, name: str) -> None:
    graded = attack_run.graded[name]
    result = graded.result
    assert result.status in ("failed", "timeout"), (name, result.status, result.message)
    assert not result.passed and result.counts_as_attempt
    assert graded.leftovers == [], graded.leftovers
    assert processes_with(result.submission_id) == []


def test_infinite_loop_names_the_test_that_hung(attack_run: AttackRun) -> None:
    result = attack_run.graded["infinite_loop"].result
    assert result.status == "timeout"
    assert result.tests[0].status == "timeout" and all(t.status == "not_run" for t in result.tests[1:])
    assert "Test 1 (visible example" in result.message and "did not finish within the 6 s limit" in result.message
    loading = attack_run.graded["infinite_loop_at_import"].result
    assert loading.status == "timeout" and "did not finish loading" in loading.message


def test_memory_and_process_bombs_are_refused(attack_run: AttackRun) -> None:
    memory = attack_run.graded["memory_bomb"].result
    assert "MemoryError" in memory.message and "tensor bomb refused" in memory.output
    fork = attack_run.graded["fork_bomb"].result
    assert "PermissionError" in fork.message and "spawn blocked" in fork.output


def test_no_connection_leaves_the_sandbox(attack_run: AttackRun) -> None:
    result = attack_run.graded["socket"].result
    assert "CONNECTED" not in result.output and "blocked 127.0.0.1" in result.output
    assert attack_run.bait_connections == 0


def test_nothing_of_the_host_can_be_read(attack_run: AttackRun) -> None:
    output = attack_run.graded["read_files"].result.output
    assert "LEAK" not in output, output
    assert attack_run.secrets["marker"] not in output
    assert "denied /etc/shadow" in output and "denied /etc " in output and "denied /home " in output
    assert "denied /proc " in output and "denied /sys " in output
    source = Path(straightline.__file__).resolve().parent
    assert f"denied {source} " in output and f"denied {source.parent} " in output


def test_nothing_outside_tmp_can_be_written(attack_run: AttackRun) -> None:
    output = attack_run.graded["write_files"].result.output
    assert "WROTE" not in output and "tmp ok" in output
    assert not any(p.exists() for p in attack_run.written)
    probes = Path(straightline.__file__).resolve().parent / "grader" / "inside" / "probes.py"
    assert "pwned" not in probes.read_text()


def test_an_output_flood_is_capped_and_a_correct_solution_still_passes(attack_run: AttackRun) -> None:
    result = attack_run.graded["output_flood"].result
    assert result.status == "passed", result.message
    assert result.output_truncated and len(result.output.encode()) <= 64 * 1024


def test_exiting_and_printing_cannot_fake_a_pass(attack_run: AttackRun) -> None:
    g = attack_run.graded
    assert "SystemExit" in g["sys_exit_at_import"].result.message
    assert "called sys.exit()" in g["sys_exit_in_function"].result.message
    assert "process ended during this test" in g["os_exit"].result.message
    fake = g["fake_pass_print"].result
    assert "all 6 tests passed" in fake.output and fake.status == "failed"


def test_monkeypatching_and_lying_objects_change_nothing(attack_run: AttackRun) -> None:
    for name in ("monkeypatch", "lying_object", "lying_exception"):
        result = attack_run.graded[name].result
        assert result.status == "failed" and result.passed_count == 0, (name, result.message)
    assert "<unprintable>" in attack_run.graded["lying_exception"].result.message


def test_writing_to_the_result_channel_fails_the_submission(attack_run: AttackRun) -> None:
    blind = attack_run.graded["result_channel_blind"].result
    assert "interfered with the grader's reporting" in blind.message
    forged = attack_run.graded["result_channel_forged"].result
    assert forged.status == "failed" and forged.passed_count == 0
    assert "nonce" in forged.output  # it did find the channel, and it still could not pass


def test_the_process_hosting_the_grader_keeps_answering_during_the_attacks(attack_run: AttackRun) -> None:
    page = attack_run.page
    assert page.errors == []
    # one request every 20 ms while the attacks ran: at least a third of them completed
    assert len(page.latencies) >= attack_run.seconds / 0.02 / 3 * 0.5


def test_no_attack_stopped_the_fork_server(sandbox_grader: Grader, attack_run: AttackRun) -> None:
    server = sandbox_grader.fork_server
    if server is None:
        pytest.skip("a sandbox per worker: there is no long-lived sandbox to stop")
    assert server.zygote is not None and server.zygote.alive
    assert server.starts == 1  # the same zygote as before the attacks: never restarted


# ------------------------------------------------------------------------------------------------
# the PID namespace on its own (process filter off): children in their own sessions die too


def test_pid_namespace_takes_down_children_that_left_the_session() -> None:
    settings = GraderSettings(timeout_s=3, max_concurrent=1, warm_workers=0, process_filter=False)
    with Grader(settings) as grader:
        result = grader.grade("cfm_loss", attacks.SETSID_CHILDREN)
        assert result.status == "timeout"
        assert processes_with(result.submission_id) == []


# ------------------------------------------------------------------------------------------------
# refusals and failures of the grader itself


def test_one_submission_per_learner_and_a_bounded_queue() -> None:
    settings = GraderSettings(timeout_s=30, max_concurrent=1, max_waiting=0, warm_workers=0)
    grader = Grader(settings)
    try:
        first = grader.submit_future("ada", "cfm_loss", attacks.INFINITE_LOOP)
        with pytest.raises(LearnerBusy, match="still being graded"):
            grader.submit_future("ada", "cfm_loss", CFM_CORRECT["view-star"])
        with pytest.raises(QueueFull, match="busy"):
            grader.submit_future("bob", "cfm_loss", CFM_CORRECT["view-star"])
        with pytest.raises(SubmissionTooLarge, match="at most"):
            grader.submit_future("cyd", "cfm_loss", "#" * (settings.max_code_bytes + 1))
        with pytest.raises(UnknownExercise, match="accepted: cfm_loss"):
            grader.submit_future("cyd", "cfm", "")
    finally:
        grader.close()  # cancels the hung submission and kills its sandbox
    assert first.cancelled() or first.done()


def test_missing_bubblewrap_refuses_to_grade_with_a_plain_message() -> None:
    grader = Grader(GraderSettings(bwrap="/nonexistent/bwrap"))
    availability = grader.availability()
    assert not availability.ok and "bubblewrap" in availability.message and "apt-get install bubblewrap" in availability.message
    with pytest.raises(GraderUnavailable, match="bubblewrap"):
        asyncio.run(grader.submit("ada", "cfm_loss", CFM_CORRECT["view-star"]))
    grader.close()


def test_an_infrastructure_failure_is_reported_and_not_counted(tmp_path: Path) -> None:
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    with Grader(GraderSettings(bwrap=str(broken), warm_workers=0)) as grader:
        result = grader.grade("cfm_loss", CFM_CORRECT["view-star"])
    assert result.status == "infrastructure_error" and not result.counts_as_attempt
    assert "does not count as an attempt" in result.message and "uid map" in result.message


def test_unsafe_local_grading_works_with_a_warning_and_still_blocks_processes() -> None:
    with Grader(GraderSettings(unsafe_local=True, max_concurrent=2, warm_workers=0, timeout_s=10)) as grader:
        assert grader.availability().unsafe
        good = grader.grade("euler_sample", EULER_CORRECT["full"], learner_id="a")
        fork = grader.grade("cfm_loss", attacks.FORK_BOMB, learner_id="b")
    assert good.status == "passed" and good.warning and "UNSAFE" in good.warning
    assert fork.status == "failed" and "PermissionError" in fork.message
    assert processes_with(fork.submission_id) == []


def test_the_sandbox_mounts_nothing_of_the_project_or_home() -> None:
    from straightline.grader.sandbox import sandbox_layout

    layout = sandbox_layout()
    source = Path(straightline.__file__).resolve().parent
    for _, dest in layout.binds:
        inside = Path(dest) == source or Path(dest) in source.parents
        assert not inside or str(source) in layout.masks, dest
        assert dest not in ("/", "/etc", "/home", "/root", "/work", "/var", "/usr", str(Path.home()))
        assert not dest.startswith(("/etc", "/home", "/var"))
