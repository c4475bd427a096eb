"""How a sandboxed worker is launched: what it can see, and the bubblewrap command line.

The sandbox sees, read-only, only what running `python -c "import torch"` needs:

- the system libraries (/usr/lib, /lib, /lib64 and their multiarch subdirectories; no /etc,
  /home, /root, /var, /usr/bin, /usr/share);
- the Python interpreter binary, its standard library and libpython;
- the virtual environment's `pyvenv.cfg` and its site-packages (where torch lives). If the
  `straightline` package itself lies under a mounted path (a non-editable install), an empty tmpfs
  hides it; an editable install points at the source tree, which is not mounted;
- the files of `inside/` (the worker's entry point `worker.py`, `probes.py`, `simkit.py` and the
  fork server's `zygote.py`, `control.py` and `seccomp.py`), at /opt/straightline-grader/.

and, writable, a private, size-limited tmpfs at /tmp (its working directory); a minimal /dev
(null, zero, random, urandom, tty; read-only mount). No /proc, /sys or /etc. Everything else is a
read-only empty root. Namespaces: user (uid/gid 65534 inside, no capabilities, no nested user
namespaces), PID (the worker is not PID 1; bubblewrap's init is, so when the grader kills
bubblewrap the kernel kills every process of the namespace, whatever session it put itself in),
network (only a private loopback), IPC, UTS, cgroup. A seccomp filter (`seccomp.py`) forbids
creating processes at all. The environment is cleared and set to a few thread-count variables.

In fork-server mode (`zygote_command`) one long-lived sandbox with the same layout, namespaces
and environment runs `zygote.py` instead, under the zygote's seccomp filter (it may fork, and
unshare a mount, IPC and network namespace), with CAP_SYS_ADMIN and CAP_SETPCAP inside its own
user namespace only; every child it forks drops both, makes its own /tmp and loads the child's
filter before it reads its job (see zygote.py). The read-only mounts the sandbox puts under /tmp
(`tmp_layout`) are what each child mounts again in its fresh /tmp.

In unsafe local mode (no bubblewrap) the worker runs as a plain child process with the same
protocol, rlimits and seccomp filter but none of the filesystem or network isolation.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from .inside import seccomp
from .settings import GraderSettings

__all__ = [
    "Availability",
    "SANDBOX_DIR",
    "SandboxLayout",
    "UNSAFE_WARNING",
    "bwrap_command",
    "check_availability",
    "sandbox_layout",
    "tmp_layout",
    "unsafe_command",
    "zygote_command",
    "INSIDE_FILES",
]

SANDBOX_DIR = "/opt/straightline-grader"
SANDBOX_UID = 65534
INSIDE = Path(__file__).resolve().parent / "inside"
# what the sandbox sees of the package: the untrusted room's modules (its __init__ is not needed there)
INSIDE_FILES = tuple(INSIDE / name for name in ("worker.py", "probes.py", "simkit.py", "zygote.py", "control.py", "seccomp.py"))
WORKER_ENTRY = "worker.py"  # the worker's entry point, run as a script
ZYGOTE_ENTRY = "zygote.py"  # the fork server's entry point
ZYGOTE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETPCAP")
SANDBOX_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
}
UNSAFE_WARNING = (
    "UNSAFE LOCAL GRADING: the submission ran without the bubblewrap sandbox (resource limits and a "
    "process filter only; it could read your files and use the network). Use this only for your "
    "own code on your own machine."
)
_SYSTEM_LIBS = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32")


@dataclass(frozen=True)
class Availability:
    """Whether the grader can grade here, and what to tell the learner when it cannot."""

    ok: bool
    unsafe: bool
    message: str
    bwrap: str | None = None


def check_availability(settings: GraderSettings) -> Availability:
    """Bubblewrap present (or unsafe mode chosen), Linux, a machine the seccomp filter knows."""
    if not sys.platform.startswith("linux"):
        return Availability(False, False, f"Grading needs Linux (this is {sys.platform}); it is disabled here.")
    if not seccomp.supported_machine():
        return Availability(False, False, "Grading is disabled: the sandbox's process filter does not support this CPU type.")
    if settings.unsafe_local:
        return Availability(True, True, UNSAFE_WARNING)
    bwrap = settings.bwrap or shutil.which("bwrap")
    if not bwrap or not os.access(bwrap, os.X_OK):
        return Availability(
            False,
            False,
            "Grading is unavailable: the grader runs submissions in a sandbox made with bubblewrap "
            "(the `bwrap` command), which is not installed. On Debian or Ubuntu: "
            "sudo apt-get install bubblewrap. (For a single learner on their own machine, "
            "--unsafe-local-grading grades without it, with much weaker isolation.)",
        )
    return Availability(True, False, "", bwrap=bwrap)


@functools.cache
def _bwrap_options(bwrap: str) -> frozenset[str]:
    """The options this bubblewrap understands (older versions lack --size / --disable-userns)."""
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(word for word in text.split() if word.startswith("--"))


@dataclass(frozen=True)
class SandboxLayout:
    """The read-only mounts of the sandbox and the interpreter to run there."""

    binds: tuple[tuple[str, str], ...]  # (host path, sandbox path)
    symlinks: tuple[tuple[str, str], ...]  # (target, link path)
    masks: tuple[str, ...]  # directories hidden under an empty tmpfs
    python: str  # the interpreter's path inside the sandbox
    extra: dict[str, str] = field(default_factory=dict)


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


@functools.cache
def sandbox_layout() -> SandboxLayout:
    """Computed from the running interpreter: its binary, stdlib, venv and torch's site-packages."""
    import torch

    import straightline

    binds: list[tuple[str, str]] = []
    symlinks: list[tuple[str, str]] = []
    masks: list[str] = []
    dirs: list[Path] = []

    for lib in _SYSTEM_LIBS:
        if os.path.islink(lib):
            symlinks.append((os.readlink(lib), lib))
        elif os.path.isdir(lib):
            binds.append((lib, lib))
            dirs.append(Path(lib))

    def bind_dir(path: Path) -> None:
        path = path.resolve()
        if path.is_dir() and not _under(path, dirs):
            binds.append((str(path), str(path)))
            dirs.append(path)

    exe = Path(os.path.realpath(sys.executable))
    if not _under(exe, dirs):
        binds.append((str(exe), str(exe)))
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):  # (in a venv, platstdlib is the venv's lib dir: skip it)
        if (Path(paths[key]) / "os.py").is_file():
            bind_dir(Path(paths[key]))
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlibrary = sysconfig.get_config_var("LDLIBRARY") or ""
    if libdir and ".so" in ldlibrary:  # a shared libpython the binary links against
        for lib in sorted(Path(libdir).glob("libpython*.so*")):
            if not _under(lib.resolve(), dirs):
                binds.append((str(lib), str(lib)))
    site = [Path(paths["purelib"]).resolve(), Path(paths["platlib"]).resolve()]
    torch_site = Path(torch.__file__).resolve().parent.parent
    base_site = Path(paths["stdlib"]).resolve() / "site-packages"
    if base_site.is_dir() and base_site not in site and base_site != torch_site:
        masks.append(str(base_site))  # the base interpreter's own packages: not needed
    for p in site + [torch_site]:
        bind_dir(p)

    python = str(exe)
    if sys.prefix != sys.base_prefix:  # a virtual environment: recreate its skeleton
        prefix = Path(sys.prefix)
        cfg = prefix / "pyvenv.cfg"
        binds.append((str(cfg), str(cfg)))
        python = str(prefix / "bin" / "python")
        if python != str(exe):  # a venv made with copies (venv.create's default) already bound it
            symlinks.append((str(exe), python))

    package = Path(straightline.__file__).resolve().parent
    if _under(package, dirs):
        masks.append(str(package))
    return SandboxLayout(binds=tuple(binds), symlinks=tuple(symlinks), masks=tuple(masks), python=python)


def _worker_args(result_fd: int, tag: str, settings: GraderSettings) -> list[str]:
    return [
        str(result_fd),
        "--tag",
        tag,
        "--memory",
        str(settings.memory_bytes),
        "--output-bytes",
        str(settings.output_bytes),
        "--open-files",
        str(settings.open_files),
        "--nice",
        str(settings.worker_nice),
    ]


def _bwrap_prefix(
    bwrap: str, settings: GraderSettings, *, seccomp_fd: int | None, info_fd: int, caps: tuple[str, ...] = ()
) -> list[str]:
    """bubblewrap's options up to `--`: the layout, the namespaces, the environment, the filter.

    `caps`: capabilities the sandboxed process keeps *inside its own user namespace* (every other
    one is dropped, also from the bounding set); none for a worker.
    """
    layout = sandbox_layout()
    options = _bwrap_options(bwrap)
    cmd = [bwrap]
    # the private /tmp comes first, so that read-only binds of paths that live under /tmp (a
    # checkout or virtual environment in /tmp, as in a CI clone) are mounted on top of it
    if "--size" in options:
        cmd += ["--size", str(settings.tmp_bytes)]
    cmd += ["--tmpfs", "/tmp"]
    for src, dest in layout.binds:
        cmd += ["--ro-bind", src, dest]
    for target, link in layout.symlinks:
        cmd += ["--symlink", target, link]
    for path in layout.masks:
        cmd += ["--tmpfs", path]
    for path in INSIDE_FILES:
        cmd += ["--ro-bind", str(path), f"{SANDBOX_DIR}/{path.name}"]
    cmd += ["--dev", "/dev"]  # no /proc: nothing needs it, and it would show host details
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/"]
    cmd += ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    if "--disable-userns" in options:
        cmd += ["--disable-userns"]
    if caps:
        cmd += ["--cap-drop", "ALL"]
        for cap in caps:
            cmd += ["--cap-add", cap]
    cmd += ["--hostname", "sandbox", "--die-with-parent", "--new-session", "--info-fd", str(info_fd), "--clearenv"]
    for name, value in SANDBOX_ENV.items():
        cmd += ["--setenv", name, value]
    cmd += ["--chdir", "/tmp"]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    return cmd + ["--", layout.python, "-I", "-B"]


def bwrap_command(
    bwrap: str,
    settings: GraderSettings,
    *,
    result_fd: int,
    seccomp_fd: int | None,
    info_fd: int,
    tag: str,
) -> list[str]:
    """The bubblewrap command line of one worker (see the module docstring for what it grants)."""
    cmd = _bwrap_prefix(bwrap, settings, seccomp_fd=seccomp_fd, info_fd=info_fd)
    return cmd + [f"{SANDBOX_DIR}/{WORKER_ENTRY}"] + _worker_args(result_fd, tag, settings)


def tmp_layout(layout: SandboxLayout) -> dict[str, list]:
    """What the sandbox mounts under /tmp (read-only binds, symlinks), for the fork server's
    children to mount again in their own /tmp: {"binds": [path, ...], "symlinks": [[target, link], ...]}.

    Only the outermost binds are listed: a bind inside another comes along with it.
    """
    under = sorted(dest for _, dest in layout.binds if dest.startswith("/tmp/"))
    outer = [d for d in under if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in under)]
    links = [[t, link] for t, link in layout.symlinks if link.startswith("/tmp/") and not any(link.startswith(o + "/") for o in outer)]
    return {"binds": outer, "symlinks": links}


def zygote_command(bwrap: str, settings: GraderSettings, *, control_fd: int, seccomp_fd: int, info_fd: int, tag: str) -> list[str]:
    """The bubblewrap command line of the fork server (`zygote.py`).

    The same layout, namespaces and environment as a worker's sandbox, with the zygote's seccomp
    filter, and two capabilities inside the sandbox's own user namespace: CAP_SYS_ADMIN, with which
    each child makes its private /tmp (a mount namespace and a tmpfs), and CAP_SETPCAP, with which
    it then empties its bounding set. Every child drops both before it reads its job.
    """
    cmd = _bwrap_prefix(bwrap, settings, seccomp_fd=seccomp_fd, info_fd=info_fd, caps=ZYGOTE_CAPS)
    args = _worker_args(control_fd, tag, settings)
    args += ["--tmp-bytes", str(settings.tmp_bytes), "--tmp-layout", json.dumps(tmp_layout(sandbox_layout()))]
    return cmd + [f"{SANDBOX_DIR}/{ZYGOTE_ENTRY}"] + args


def unsafe_command(settings: GraderSettings, *, result_fd: int, seccomp_fd: int | None, tag: str) -> list[str]:
    """The worker as a plain child process (no bubblewrap): rlimits and the seccomp filter only."""
    worker = str(INSIDE / WORKER_ENTRY)
    cmd = [sys.executable, "-I", "-B", worker] + _worker_args(result_fd, tag, settings)
    return cmd + (["--seccomp-fd", str(seccomp_fd)] if seccomp_fd is not None else [])


def sandbox_env() -> dict[str, str]:
    """The environment of the bubblewrap process itself (its child gets only SANDBOX_ENV)."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
