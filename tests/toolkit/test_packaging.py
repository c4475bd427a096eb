"""`pip install straightline` is the toolkit alone: its wheel asks for no web package, and installed
into a fresh virtual environment without the course's stack it imports, trains a model, and runs
the toolkit's commands, while `serve` says which extra to install.

Downloading torch and its neighbours into a new venv for every test run would take minutes (and
the network), so the venv borrows the already installed scientific packages through a .pth line
to the project venv's site-packages, and a `sitecustomize` in the new venv makes every module of
the course extra (FastAPI, Starlette, uvicorn, SQLAlchemy, Jinja2, ...) fail to import, exactly as
if it were not installed. The project itself is built as a wheel and installed with `pip
--no-deps` into the new venv, so what is imported is the installed wheel, not the source tree.
"""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOOLKIT = {"torch", "numpy", "scipy", "pot", "torchdiffeq", "safetensors", "scikit-learn", "tqdm"}
BLOCKED = ["fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "jinja2", "markdown_it", "mdit_py_plugins",
           "latex2mathml", "psycopg", "itsdangerous", "multipart", "python_multipart", "yaml", "platformdirs",
           "pygments", "httptools", "uvloop"]

BLOCKER = f'''
import importlib.abc, sys
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
'''


def _run(cmd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pkg")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp),
                  str(ROOT)])
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp.glob("straightline-*.whl"))
    env_dir = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    assert made.returncode == 0, made.stderr
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "sitecustomize.py").write_text(BLOCKER)
    installed = _run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)])
    assert installed.returncode == 0, installed.stderr[-2000:]
    return wheel, env_dir, python


def test_the_wheel_requires_the_toolkit_only_and_offers_the_course_extra(venv):
    wheel, _, _ = venv
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    plain = {r.split(">")[0].split("=")[0].split("<")[0].split(";")[0].strip().lower() for r in requires if "extra ==" not in r}
    assert plain == TOOLKIT
    assert "torch>=2.3" in requires
    course = [r for r in requires if "extra == \"course\"" in r]
    assert any(r.startswith("fastapi") for r in course) and any(r.startswith("sqlalchemy") for r in course)


def test_the_toolkit_imports_and_trains_without_the_web_stack(venv, tmp_path):
    _, env_dir, python = venv
    script = (
        "import sys, torch\n"
        "try:\n    import fastapi\nexcept ImportError:\n    pass\nelse:\n    sys.exit('fastapi importable')\n"
        "import straightline as sl\n"
        "assert sl.__file__.startswith(sys.prefix), sl.__file__\n"
        "torch.manual_seed(0)\n"
        "r = sl.train(sl.models.MLP(dim=2, hidden=32, depth=2), 'moons', steps=60, batch_size=64, progress=False)\n"
        "assert sum(r.losses[-20:]) / 20 < sum(r.losses[:20]) / 20, r.losses\n"
        "assert 'fastapi' not in sys.modules and 'sqlalchemy' not in sys.modules\n"
        "print('ok', sl.__file__)\n"
    )
    done = _run([str(python), "-c", script], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "ok" in done.stdout and str(env_dir) in done.stdout


def test_toolkit_commands_work_and_serve_names_the_extra(venv, tmp_path):
    _, env_dir, _ = venv
    cli = env_dir / "bin" / "straightline"
    data = tmp_path / "ring.npy"
    script = "import numpy as np; t = np.linspace(0, 6.28, 300); np.save('ring.npy', np.stack([np.cos(t), np.sin(t)], 1))"
    assert _run([str(env_dir / "bin" / "python"), "-c", script], cwd=tmp_path).returncode == 0
    trained = _run([str(cli), "train", "--data", str(data), "--steps", "10", "--batch-size", "32", "--hidden", "16",
                    "--out", str(tmp_path / "m.safetensors"), "--quiet"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (tmp_path / "m.safetensors").is_file()
    served = _run([str(cli), "serve"], cwd=tmp_path)
    assert served.returncode == 2
    assert "pip install 'straightline[course]'" in served.stderr and "fastapi" in served.stderr


def test_the_wheel_ships_the_course_figures_and_offers_the_figures_extra(venv):
    wheel, _, _ = venv
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    from straightline.course.figures import FIGURES

    missing = [n for n in FIGURES if f"straightline/course/figures/svg/{n}.svg" not in names]
    assert not missing, missing
    assert "straightline/web/templates/elements/figure.html" in names
    assert any(line.startswith("Requires-Dist: matplotlib") and 'extra == "figures"' in line for line in meta.splitlines())
