"""Helpers shared by the web tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from straightline.course.content import Course
from straightline.web.app import create_app
from straightline.web.settings import Settings

FIXTURE_CHAPTERS = Path(__file__).parent / "fixtures" / "course"
SECRET = "test-secret-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]
JSON = {"Accept": "application/json"}  # the headers of a request that wants the JSON answer


def make_settings(database_url: str, data_dir: Path, **overrides) -> Settings:
    """Settings for a test app. The Build-It grader keeps no warm workers unless a test asks
    (`grader_warm_workers=...`): most tests never grade, and each warm worker imports torch.
    TestClient's host name, `testserver`, is allowed (web/hosts.py answers only loopback names)."""
    base = {"database_url": database_url, "secret_key": SECRET, "data_dir": data_dir, "grader_warm_workers": 0,
            "allowed_hosts": ("testserver",)}  # the host name TestClient sends
    return Settings(**{**base, **overrides})


@contextmanager
def sqlite_client(data_dir: Path, course: Course, **overrides) -> Iterator[TestClient]:
    """A TestClient on an app over `course` with a SQLite store in `data_dir` (for module-scoped
    fixtures, which cannot take the per-test `store_url`)."""
    app = create_app(make_settings(f"sqlite:///{data_dir / 'progress.db'}", data_dir, **overrides), course=course)
    with TestClient(app) as client:
        yield client


def element_state(client, element_id: str) -> dict:
    """A learner's state of one element, as the JSON API answers it (the request must succeed)."""
    r = client.get(f"/elements/{element_id}", headers=JSON)
    assert r.status_code == 200, r.text
    return r.json()


# --- real server processes ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def start_server(
    data_dir: Path,
    *,
    db: str | None = None,
    content_dir: Path | None = None,
    port: int | None = None,
    wait: bool = True,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> ServerProcess:
    """`python -m straightline.web.server` on a free loopback port; waits until /healthz answers.

    `extra_env`: STRAIGHTLINE_* settings for this server (those of the test process are not passed on);
    `extra_args`: more command-line arguments (`--unsafe-local-grading`, `--allowed-host NAME`)."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIGHTLINE_")}
    env["STRAIGHTLINE_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    if content_dir is not None:
        env["STRAIGHTLINE_CONTENT_DIR"] = str(content_dir)
    args = [sys.executable, "-m", "straightline.web.server", "--host", "127.0.0.1", "--port", str(port)]
    if db:
        args += ["--db", db]
    args += extra_args or []
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    if wait:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        server.kill()
        raise RuntimeError(f"server did not answer within 90 s:\n{server.output()}")
    return server


# A correct Build-It cfm_loss, as a learner would write it (the grading tests submit it).
GOOD_CFM_LOSS = """import torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    x_0 = noise_fn(x_1)
    t = torch.rand(x_1.shape[0])
    tb = t.view(-1, *[1] * (x_1.dim() - 1))
    x_t = (1 - tb) * x_0 + tb * x_1
    return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
"""
