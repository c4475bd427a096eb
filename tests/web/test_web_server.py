"""Real server processes: progress survives SIGKILL; a malformed chapter stops start-up with
file:line; Settings read the environment only when asked."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from straightline.web.settings import Settings, load_or_create_secret

from web_support import FIXTURE_CHAPTERS, JSON, REPO, ServerProcess  # noqa: E402


def test_progress_survives_sigkill(tmp_path: Path, server_factory) -> None:
    db = f"sqlite:///{tmp_path / 'progress.db'}"
    server: ServerProcess = server_factory(tmp_path / "data", db=db, content_dir=FIXTURE_CHAPTERS)
    with httpx.Client(base_url=server.url) as learner:
        learner.get("/")
        cookie = learner.cookies["straightline_learner"]
        r = learner.post("/elements/a-check/check", data={"option": "1"}, headers=JSON)
        assert r.status_code == 200
        r = learner.post("/elements/b-gate/checkpoint", data={"answer": "trajectories are unique and never cross"}, headers=JSON)
        assert r.status_code == 200
        for step in ("hint-1", "hint-2"):
            assert learner.post("/elements/a-derivation/derivation", data={"reveal": step}, headers=JSON).status_code == 200
    server.kill(signal.SIGKILL)  # no shutdown, no flush: only what was committed counts
    assert server.process.returncode == -signal.SIGKILL

    again = server_factory(tmp_path / "data", db=db, content_dir=FIXTURE_CHAPTERS)
    with httpx.Client(base_url=again.url, cookies={"straightline_learner": cookie}) as learner:
        assert learner.get("/elements/a-check", headers=JSON).json()["status"] == "done"
        gate = learner.get("/elements/b-gate", headers=JSON).json()
        assert gate["status"] == "done" and gate["state"]["answer"] == "trajectories are unique and never cross"
        assert learner.get("/elements/a-derivation", headers=JSON).json()["state"] == {"hints": 2, "solution": False}
        assert "Gate cleared" in learner.get("/chapters/beta").text
    # the cookie secret was generated once, kept with mode 0600, and reused by the second process
    secret = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_malformed_chapter_stops_start_up_with_file_and_line(tmp_path: Path) -> None:
    content = tmp_path / "chapters"
    shutil.copytree(FIXTURE_CHAPTERS, content)
    path = content / "01-beta.md"
    text = path.read_text().replace("min_words: 5", "min_words: many")
    path.write_text(text)
    line = text.splitlines().index("```{checkpoint} b-gate") + 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIGHTLINE_")}
    env.update(STRAIGHTLINE_DATA_DIR=str(tmp_path / "data"), STRAIGHTLINE_CONTENT_DIR=str(content))
    result = subprocess.run(
        [sys.executable, "-m", "straightline.web.server", "--port", "1", "--db", f"sqlite:///{tmp_path / 'p.db'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert f"{path}:{line}: checkpoint 'b-gate': min_words 'many' must be an integer in 1..500" in result.stderr


def test_settings_from_env_defaults_and_overrides(tmp_path: Path) -> None:
    env = {"STRAIGHTLINE_DATA_DIR": str(tmp_path / "d")}
    s = Settings.from_env(env)
    assert s.database_url == f"sqlite:///{(tmp_path / 'd' / 'progress.db').resolve()}"
    assert s.secret_key == (tmp_path / "d" / "secret.key").read_text().strip()
    assert Settings.from_env(env).secret_key == s.secret_key  # generated once
    assert s.content_dir is None and s.max_body_bytes == 64 * 1024
    env.update(STRAIGHTLINE_DATABASE_URL="postgresql+psycopg://u@h/db", STRAIGHTLINE_SECRET_KEY="k" * 20)
    s = Settings.from_env(env, database_url="sqlite:////x.db")
    assert s.database_url == "sqlite:////x.db" and s.secret_key == "k" * 20
    assert Settings.from_env(env).database_url == "postgresql+psycopg://u@h/db"


def test_settings_validate_their_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret_key must have at least 16 characters, got 3"):
        Settings(database_url="sqlite://", secret_key="abc", data_dir=tmp_path)
    with pytest.raises(ValueError, match="max_body_bytes must be in 1024"):
        Settings(database_url="sqlite://", secret_key="k" * 16, data_dir=tmp_path, max_body_bytes=10)
    s = Settings(database_url="sqlite://", secret_key="k" * 16, data_dir=tmp_path)
    assert s.body_limit_for("/elements/x/check") == 64 * 1024
    assert s.body_limit_for("/progress/import") == 4 * 1024 * 1024
    roomy = s.with_body_limit("/api/exercises/", 1024 * 1024)
    assert roomy.body_limit_for("/api/exercises/cfm_loss/grade") == 1024 * 1024 and s.body_limit_for("/api/exercises/") == 64 * 1024


def test_a_short_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("short\n")
    with pytest.raises(ValueError, match="holds a 5-character secret"):
        load_or_create_secret(tmp_path)


def test_nothing_is_read_from_the_environment_at_import() -> None:
    code = (
        "import os; os.environ['STRAIGHTLINE_DATA_DIR'] = '/nonexistent/should-not-be-touched'\n"
        "import straightline.web.app, straightline.web.server, straightline.web.settings\n"
        "assert not os.path.exists('/nonexistent/should-not-be-touched')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_creating_the_app_and_rendering_a_page_does_not_import_torch(tmp_path: Path) -> None:
    """Start-up stays fast: torch (seconds to import) loads in the background or on first use of
    a Build-It panel, never before the first page."""
    code = (
        "import sys, pathlib\n"
        "from straightline.web.settings import Settings\n"
        "from straightline.web.app import create_app\n"
        "from straightline.web.grading import grader_settings\n"
        f"d = pathlib.Path({str(tmp_path)!r})\n"
        "app = create_app(Settings(database_url=f'sqlite:///{d}/p.db', secret_key='k' * 40, data_dir=d))\n"
        "assert 'torch' not in sys.modules, 'create_app imported torch'\n"
        "from fastapi.testclient import TestClient\n"
        "r = TestClient(app, base_url='http://127.0.0.1').get('/')\n"
        "assert r.status_code == 200 and 'chapter' in r.text.lower(), r.status_code\n"
        "assert 'torch' not in sys.modules, 'the home page imported torch'\n"
        "import straightline.grader as g\n"
        "g.Grader, g.GraderSettings, g.UnknownExercise, g.check_availability\n"
        "assert 'torch' not in sys.modules, 'the grader package imported torch'\n"
        "assert g.EXERCISE_NAMES == tuple(g.EXERCISES), 'catalog and registry disagree'\n"
        "assert 'torch' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_grader_capacity_comes_from_the_environment(tmp_path: Path) -> None:
    env = {"STRAIGHTLINE_DATA_DIR": str(tmp_path), "STRAIGHTLINE_GRADER_WARM_WORKERS": "6",
           "STRAIGHTLINE_GRADER_CONCURRENCY": "3"}
    s = Settings.from_env(env)
    assert (s.grader_warm_workers, s.grader_concurrency) == (6, 3)
    assert Settings.from_env(env, grader_warm_workers=1).grader_warm_workers == 1  # an explicit value wins
    with pytest.raises(ValueError, match=r"STRAIGHTLINE_GRADER_WARM_WORKERS must be a whole number, got 'many'"):
        Settings.from_env({**env, "STRAIGHTLINE_GRADER_WARM_WORKERS": "many"})
    with pytest.raises(ValueError, match=r"grader_concurrency must be in 1\.\.256, got 0"):
        Settings.from_env({**env, "STRAIGHTLINE_GRADER_CONCURRENCY": "0"})


def test_the_grader_fork_server_is_switched_by_the_environment(tmp_path: Path) -> None:
    from straightline.web.grading import grader_settings

    env = {"STRAIGHTLINE_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).grader_fork_server is None
    assert grader_settings(Settings.from_env(env)).fork_server is True  # the grader's default
    on = Settings.from_env({**env, "STRAIGHTLINE_GRADER_FORK_SERVER": "1"})
    assert on.grader_fork_server is True and grader_settings(on).fork_server is True
    assert Settings.from_env({**env, "STRAIGHTLINE_GRADER_FORK_SERVER": "0"}).grader_fork_server is False
    assert Settings.from_env({**env, "STRAIGHTLINE_GRADER_FORK_SERVER": "1"}, grader_fork_server=False).grader_fork_server is False
    for bad in ("yes", "true", "2", " 1"):
        with pytest.raises(ValueError, match=rf"STRAIGHTLINE_GRADER_FORK_SERVER must be 0 or 1, got {bad!r}"):
            Settings.from_env({**env, "STRAIGHTLINE_GRADER_FORK_SERVER": bad})
