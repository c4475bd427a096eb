"""Fork-server mode: children of one zygote sandbox cannot reach each other or the zygote, see
nothing an earlier child left (files, sockets, memory), end with no privileges; the grader
survives the zygote's death, reports exactly what a sandbox per worker reports, and falls back to
a sandbox per worker where the fork server cannot run.

The attacks that a sandbox per worker must also contain run in both modes in
test_grader_sandbox.py; these are the ones only siblings can try."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import stat
import subprocess
import sysconfig
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import grader_attacks as attacks
from grader_support import MODES, grader_in_mode, needs_bwrap, processes_with
from grader_variants import CFM_BUGS, CFM_CORRECT
from straightline.grader import Grader, GraderSettings, check_availability
from straightline.grader.fork_server import ForkServer

pytestmark = needs_bwrap

SETTINGS = GraderSettings(timeout_s=8, cpu_seconds=5, memory_bytes=1024**3, max_concurrent=2, warm_workers=2)


@pytest.fixture(scope="module")
def fork_grader() -> Iterator[Grader]:
    with grader_in_mode(SETTINGS, "fork_server") as grader:
        yield grader


def _together(grader: Grader, codes: list[str]) -> list:
    """Submit every code at once (different learners); their results, in order."""

    async def main() -> list:
        return list(await asyncio.gather(*(grader.submit(f"learner-{i}-{secrets.token_hex(2)}", "cfm_loss", c) for i, c in enumerate(codes))))

    return asyncio.run(main())


def _zygote_unchanged(grader: Grader) -> None:
    server = grader.fork_server
    assert server is not None and server.zygote is not None and server.zygote.alive and server.starts == 1


# ------------------------------------------------------------------------------------------------
# siblings in flight at the same time


def test_signals_reach_neither_the_sibling_nor_the_zygote(fork_grader: Grader) -> None:
    attacker, sibling = _together(fork_grader, [attacks.SIGNAL_EVERYONE, attacks.SLOW_CORRECT.format(seconds=2.5)])
    assert sibling.status == "passed", sibling.message
    assert attacker.status == "failed" and attacker.counts_as_attempt
    out = attacker.output
    assert "SENT" not in out, out
    assert out.count("refused kill(-1) EPERM") == 2 and out.count("refused kill(0) EPERM") == 2
    assert "signals to other pids sent: 0 refused with: ['EPERM']" in out
    assert "signal to itself: allowed" in out
    _zygote_unchanged(fork_grader)
    assert processes_with(attacker.submission_id) == [] and processes_with(sibling.submission_id) == []


def test_no_call_can_target_another_process(fork_grader: Grader) -> None:
    attacker, sibling = _together(fork_grader, [attacks.OTHER_PROCESSES, attacks.SLOW_CORRECT.format(seconds=2.5)])
    assert sibling.status == "passed", sibling.message
    out = attacker.output
    assert "every call on another process: EPERM []" in out, out
    assert "self: True 10 True True" in out  # the same calls on itself work (nice 10: worker_nice)
    _zygote_unchanged(fork_grader)


def _tmp_skeleton() -> list[str]:
    """What a child's fresh /tmp holds before anything is written: the mount points of read-only
    paths that live under /tmp (a checkout or virtual environment in /tmp, as in a CI clone)."""
    from straightline.grader.sandbox import sandbox_layout, tmp_layout

    layout = tmp_layout(sandbox_layout())
    paths = layout["binds"] + [link for _, link in layout["symlinks"]]
    return sorted({p.split("/")[2] for p in paths})


def test_tmp_sockets_and_shared_memory_stay_private(fork_grader: Grader) -> None:
    marker = f"trace-{secrets.token_hex(6)}"
    leaver, concurrent = _together(
        fork_grader,
        [attacks.LEAVE_TRACES.format(marker=marker, seconds=3), attacks.LOOK_FOR_TRACES.format(marker=marker, delay=1)],
    )
    assert f"'{marker}-dir', '{marker}.txt'" in leaver.output and "shm True" in leaver.output, leaver.output
    (later,) = _together(fork_grader, [attacks.LOOK_FOR_TRACES.format(marker=marker, delay=0)])
    for looker in (concurrent, later):
        out = looker.output
        assert f"tmp {_tmp_skeleton()}" in out, out  # a private, empty /tmp (but for mount points)
        assert "FOUND" not in out and out.count("absent") == 2
        assert "no socket" in out and "no shm" in out
    _zygote_unchanged(fork_grader)


# ------------------------------------------------------------------------------------------------
# what an earlier child leaves behind, and what a child holds


def test_a_later_child_finds_nothing_of_an_earlier_ones_code_in_its_memory(fork_grader: Grader) -> None:
    head, tail = secrets.token_hex(8), secrets.token_hex(8)
    (carrier,) = _together(fork_grader, [attacks.CARRIES_MARKER.format(head=head, tail=tail)])
    assert carrier.status == "failed"  # it ran: its code was compiled and executed in its child
    (searcher,) = _together(fork_grader, [attacks.SEARCH_MEMORY.format(head=head, tail=tail)])
    out = searcher.output
    assert "heap: marker absent control True" in out, out
    assert "raw: marker absent control True" in out, out  # the search works: it finds its own control
    scanned = int(out.split("MiB")[1].split()[0])
    assert scanned >= 100, out  # the heap, torch's memory and the mappings around them


def test_a_child_holds_only_its_own_three_descriptors(fork_grader: Grader) -> None:
    (result,) = _together(fork_grader, [attacks.FIND_CONTROL_SOCKET])
    out = result.output
    assert "fds [0, 1, 2, 3] sockets [] sent []" in out, out
    assert "listing /proc missing" in out
    _zygote_unchanged(fork_grader)


def test_a_child_ends_with_no_capabilities(fork_grader: Grader) -> None:
    (result,) = _together(fork_grader, [attacks.CAPABILITIES])
    out = result.output
    assert "capabilities [(0, 0, 0), (0, 0, 0)]" in out, out
    assert "ambient 0 bounding 0" in out and "dumpable 0 no_new_privs 1" in out
    assert "ALLOWED" not in out
    for name in ("unshare-mount", "unshare-user", "mount", "umount", "chroot", "sethostname", "mknod"):
        assert f"refused {name} EPERM" in out, (name, out)
    for name in ("chown", "setuid", "raise-nice"):  # no other user or group is even mapped
        assert f"refused {name} " in out, (name, out)


# ------------------------------------------------------------------------------------------------
# the grader around the zygote


def _zygote_python(grader: Grader) -> int:
    """Host pid of the zygote's interpreter (not bubblewrap, not a child)."""
    server = grader.fork_server
    assert server is not None and server.zygote is not None
    for pid, _ in processes_with(server.zygote.sandbox.tag):
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip().startswith("python"):
                return pid
    raise AssertionError("no zygote process found")


def test_the_grader_recovers_when_the_zygote_is_killed_from_outside() -> None:
    settings = GraderSettings(timeout_s=20, max_concurrent=2, warm_workers=1)
    hang = "import time, torch\ntime.sleep(60)\n\ndef cfm_loss(model, x_1, noise_fn=None):\n    return torch.zeros(())\n"
    with grader_in_mode(settings, "fork_server") as grader:
        old_tag = grader.fork_server.zygote.sandbox.tag
        in_flight = grader.submit_future("ada", "cfm_loss", hang)
        time.sleep(1.5)  # its child has taken the job and is sleeping
        os.kill(_zygote_python(grader), signal.SIGKILL)
        lost = in_flight.result(timeout=30)
        assert lost.status == "infrastructure_error" and not lost.counts_as_attempt, lost.message
        assert "stopped while your code ran" in lost.message
        again = grader.grade("cfm_loss", CFM_CORRECT["view-star"], learner_id="ada")
        assert again.status == "passed", again.message
        assert grader.fork_server.starts == 2 and grader.fork_server.active
        assert processes_with(old_tag) == [] and processes_with(lost.submission_id) == []


PARITY = {
    "correct": CFM_CORRECT["view-star"],
    "bug": CFM_BUGS["target-reversed"][0],
    "syntax": "import torch\ndef cfm_loss(model, x_1:\n    return 0\n",
    "load-error": "import torch\nraise ValueError('at import')\n",
    "missing": "import torch\ndef loss(model, x_1, noise_fn=None):\n    return 0\n",
    "exception": "import torch\ndef cfm_loss(model, x_1, noise_fn=None):\n    return 1 / 0\n",
    "sys-exit-import": attacks.SYS_EXIT_AT_IMPORT,
    "sys-exit": attacks.SYS_EXIT_IN_FUNCTION,
    "os-exit": attacks.OS_EXIT,
    "sleep": "import time, torch\ndef cfm_loss(model, x_1, noise_fn=None):\n    time.sleep(100)\n",
    "sleep-at-import": "import time, torch\ntime.sleep(100)\ndef cfm_loss(model, x_1, noise_fn=None):\n    return 0\n",
    "cpu-limit": "import torch\ndef cfm_loss(model, x_1, noise_fn=None):\n    while True:\n        pass\n",
    # the memory bomb goes off once (a bomb in every test would run into the 1 s CPU limit at a
    # point that varies from run to run)
    "memory": "import torch\nbombed = []\ndef cfm_loss(model, x_1, noise_fn=None):\n    if bombed:\n        raise MemoryError()\n"
    "    bombed.append(1)\n    hoard = []\n    while True:\n        hoard.append(bytearray(50 * 1024 * 1024))\n",
    "output-flood": attacks.OUTPUT_FLOOD,
    "segfault": "import ctypes, torch\ndef cfm_loss(model, x_1, noise_fn=None):\n    ctypes.string_at(0)\n",
    "sigterm-self": "import os, signal, torch\ndef cfm_loss(model, x_1, noise_fn=None):\n    os.kill(os.getpid(), signal.SIGTERM)\n",
    "abort": "import os, torch\nprint('before abort', flush=True)\ndef cfm_loss(model, x_1, noise_fn=None):\n    os.abort()\n",
    "fork": attacks.FORK_BOMB,
    "result-channel": attacks.RESULT_CHANNEL_BLIND,
}


def test_every_report_is_the_same_in_both_modes() -> None:
    """Timeouts, the CPU and memory limits, the output cap, exits and signals: one report for both."""
    # every case waits at once: the queue must hold them all (the default holds 16)
    settings = GraderSettings(timeout_s=8, cpu_seconds=1, memory_bytes=1024**3, max_concurrent=2, warm_workers=2,
                              max_waiting=len(PARITY))
    reports = {}
    for mode in MODES:
        with grader_in_mode(settings, mode) as grader:
            results = _together(grader, list(PARITY.values()))
        reports[mode] = {}
        for name, result in zip(PARITY, results):
            report = result.to_dict()
            for key in ("submission_id", "duration_s"):
                report.pop(key)
            reports[mode][name] = report
    per_worker, forked = reports["per_worker"], reports["fork_server"]
    for name in PARITY:
        assert forked[name] == per_worker[name], name
    statuses = {name: r["status"] for name, r in per_worker.items()}
    assert statuses["correct"] == statuses["output-flood"] == "passed"
    assert statuses["sleep"] == statuses["sleep-at-import"] == "timeout"
    assert "CPU-time limit (1 s)" in per_worker["cpu-limit"]["message"]
    assert "killed by signal 11" in per_worker["segfault"]["message"]
    assert "killed by signal 15" in per_worker["sigterm-self"]["message"]
    assert "killed by signal 6" in per_worker["abort"]["message"]
    assert "MemoryError at line 9. It ran out of memory" in per_worker["memory"]["message"]


@pytest.mark.parametrize("symlinks", [True, False], ids=["symlinked-python", "copied-python"])
def test_a_virtual_environment_under_tmp_is_mounted_again_in_each_childs_tmp(tmp_path: Path, symlinks: bool) -> None:
    """A checkout or venv under /tmp (as in a CI clone): the sandbox mounts it read-only under /tmp,
    and each child, which gets a fresh /tmp, must mount it there again (read-only). Both kinds of
    venv: `python -m venv` symlinks the interpreter, `venv.create` copies it by default."""
    import venv

    assert str(tmp_path).startswith("/tmp/")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=symlinks)
    site = next(env_dir.glob("lib/python*/site-packages"))
    (site / "zz_project.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    script = textwrap.dedent(
        f"""
        import dataclasses, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from grader_support import grader_in_mode
        from straightline.grader import GraderSettings
        code = '''import os, torch
        site = {str(site)!r}
        print("listing", os.listdir(site), "cfg", os.path.isfile({str(env_dir / "pyvenv.cfg")!r}))
        try:
            open(site + "/evil.pth", "w")
            print("WROTE")
        except OSError as exc:
            print("denied", exc.strerror)
        open("/tmp/mine", "w").close()
        print("tmp", sorted(os.listdir("/tmp")))
        def cfm_loss(model, x_1, noise_fn=None):
            return torch.zeros(())
        '''
        with grader_in_mode(GraderSettings(max_concurrent=1, warm_workers=1), "fork_server") as grader:
            print(grader.grade("cfm_loss", code).output)
        """
    )
    run = subprocess.run([str(env_dir / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=300, cwd="/")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "listing ['zz_project.pth'] cfg True" in run.stdout, run.stdout
    assert "denied Read-only file system" in run.stdout and "WROTE" not in run.stdout
    expected = sorted({"mine", str(tmp_path).split("/")[2], *_tmp_skeleton()})  # its own file, and mount points
    assert f"tmp {expected}" in run.stdout, run.stdout


def test_where_the_fork_server_cannot_start_the_grader_uses_a_sandbox_per_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bubblewrap that will not grant the zygote its capabilities (as some setuid installations
    refuse --cap-add): the first child never comes up, the grader says why and falls back."""
    from grader_support import BWRAP

    fussy = tmp_path / "bwrap"
    fussy.write_text(
        "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = --cap-add ]; then\n"
        "    echo 'bwrap: --cap-add in setuid mode can only be used by root' >&2; exit 1\n  fi\ndone\n"
        f"exec {BWRAP} \"$@\"\n"
    )
    fussy.chmod(fussy.stat().st_mode | stat.S_IXUSR)
    caplog.set_level(logging.WARNING, logger="straightline.grader.fork_server")
    settings = GraderSettings(bwrap=str(fussy), fork_server=True, max_concurrent=1, warm_workers=0)
    with Grader(settings) as grader:
        result = grader.grade("cfm_loss", CFM_CORRECT["view-star"])
        server = grader.fork_server
    assert result.status == "passed", result.message
    assert len(result.submission_id) == 16  # a sandbox of its own
    assert server is not None and not server.active and "--cap-add" in (server.unavailable or "")
    assert any("does not work here" in r.getMessage() and "--cap-add" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (GraderSettings(fork_server=True, unsafe_local=True), "needs the bubblewrap sandbox"),
        (GraderSettings(fork_server=True, process_filter=False), "needs the process filter"),
    ],
    ids=["unsafe-local", "no-process-filter"],
)
def test_fork_server_mode_is_unavailable_without_its_layers(settings: GraderSettings, reason: str) -> None:
    server = ForkServer(settings, check_availability(settings))
    assert server.unavailable is not None and reason in server.unavailable and not server.active
