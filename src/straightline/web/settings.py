"""Typed configuration of the web app.

`Settings` is passed to `create_app(settings)`. Nothing here is read at import time:
`Settings.from_env()` reads the environment only when called.

Environment variables (all optional):

    STRAIGHTLINE_DATABASE_URL   progress database, e.g. postgresql+psycopg://user@host/db
    STRAIGHTLINE_DATA_DIR       where the default SQLite file and the cookie secret live
    STRAIGHTLINE_SECRET_KEY     key that signs the learner cookie (else generated once, kept in DATA_DIR)
    STRAIGHTLINE_CONTENT_DIR    chapter sources (default: the chapters shipped in the package)
    STRAIGHTLINE_GRADER_CONCURRENCY   Build-It submissions graded at once (default: the cores)
    STRAIGHTLINE_GRADER_WARM_WORKERS  sandboxed workers kept ready with torch imported (default:
                                the concurrency; a class whose learners submit in bursts wants
                                more: each idle worker holds about 150 MB of private memory)
    STRAIGHTLINE_GRADER_FORK_SERVER   1 (default): grade each submission in a child forked from one
                                sandbox that imported torch once (no torch import per submission,
                                so bursts are graded much sooner); 0: a sandbox per worker

Serving a class (see docs/web-app.md, "Serving a class safely"):

    STRAIGHTLINE_ALLOWED_HOSTS  host names the server answers to besides 127.0.0.1, localhost and
                                [::1] (comma-separated: course.example.org,*.lab.example.org,10.0.0.5:8000)
    STRAIGHTLINE_PROXY_HEADERS  1: believe X-Forwarded-For/-Proto/-Host from FORWARDED_ALLOW_IPS (default 0)
    STRAIGHTLINE_FORWARDED_ALLOW_IPS  the reverse proxies' addresses or networks (default 127.0.0.1,::1)
    STRAIGHTLINE_COOKIE_SECURE  1: send the learner cookie over HTTPS only (default 0)
    STRAIGHTLINE_GRADER_PER_CLIENT  Build-It jobs one client address may have in the grader, running or
                                waiting (default 2; raise it when many learners share one address)
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["Settings", "default_data_dir", "load_or_create_secret", "sqlite_url"]

KIB = 1024
MIB = 1024 * KIB
SECRET_FILE = "secret.key"
DB_FILE = "progress.db"
MIN_SECRET_CHARS = 16
_SWITCH = {"0": False, "1": True}


def default_data_dir() -> Path:
    """The user's data directory for straightline, e.g. ~/.local/share/straightline."""
    import platformdirs

    return Path(platformdirs.user_data_dir("straightline", appauthor=False))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def load_or_create_secret(data_dir: Path) -> str:
    """The cookie-signing secret kept in `data_dir/secret.key` (mode 0600), created on first use."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < MIN_SECRET_CHARS:
            raise ValueError(
                f"{path} holds a {len(key)}-character secret; it needs at least {MIN_SECRET_CHARS} "
                "characters (delete the file to have a new one generated; learners' cookies then reset)"
            ) from None
        return key
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


@dataclass(frozen=True)
class Settings:
    """Everything the web app needs to know; build one with `from_env()` or directly in tests.

    database_url      SQLAlchemy URL of the progress store (sqlite:///... or postgresql+psycopg://...)
    secret_key        signs the learner cookie; anyone holding it can impersonate learners
    data_dir          directory of the default SQLite file and the generated secret
    content_dir       chapter sources; None means the chapters shipped in the package
    max_body_bytes    request bodies above this get 413 (the default for every route)
    body_limits       per-route exceptions: path prefix -> byte limit (e.g. progress import)
    experiments_dir   measured experiment results (JSON per key); None means the packaged ones
    cookie_name       name of the learner cookie
    cookie_max_age_s  lifetime of the learner cookie in seconds
    cookie_secure     send the cookie only over HTTPS (for deployments behind TLS)
    unsafe_local_grading  grade Build-It submissions without the bubblewrap sandbox (rlimits and a
                      process filter only): for one learner on their own machine; the Build-It
                      panels then show a warning (`serve --unsafe-local-grading`)
    grader_concurrency    submissions graded at once (None: the number of cores)
    grader_warm_workers   sandboxed workers kept started with torch imported (None: as many as
                      grader_concurrency; 0 starts one per submission, e.g. in tests)
    grader_fork_server    fork each submission's worker from one long-lived sandbox that imported
                      torch once (`GraderSettings.fork_server`; None: the grader's default)
    background_start_s    seconds after start-up before the background work begins (loading the
                      simulation models, warming the grader's workers), so that it does not slow
                      the first page; a simulation request or a submission starts it at once
    allowed_hosts     host names answered besides the loopback ones (`name`, `name:port`,
                      `*.domain`, an IP address); any other Host gets 400 (DNS rebinding)
    proxy_headers     believe X-Forwarded-For/-Proto/-Host from `forwarded_allow_ips` (behind nginx)
    forwarded_allow_ips   addresses or networks (or "*") of the trusted reverse proxies
    grader_per_client     Build-It jobs (running or waiting) one client address may have in the
                      grader (None: the grader's default, 2); beyond that 429 with Retry-After
    """

    database_url: str
    secret_key: str
    data_dir: Path
    content_dir: Path | None = None
    max_body_bytes: int = 64 * KIB
    body_limits: Mapping[str, int] = field(
        default_factory=lambda: {"/progress/import": 4 * MIB, "/elements/*/submission": 256 * KIB}
    )
    experiments_dir: Path | None = None
    cookie_name: str = "straightline_learner"
    cookie_max_age_s: int = 5 * 365 * 24 * 3600
    cookie_secure: bool = False
    unsafe_local_grading: bool = False
    grader_concurrency: int | None = None
    grader_warm_workers: int | None = None
    grader_fork_server: bool | None = None
    background_start_s: float = 2.0
    # -- serving a class safely (web/hosts.py, docs/web-app.md) --------------------------------
    allowed_hosts: tuple[str, ...] = ()
    proxy_headers: bool = False
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    grader_per_client: int | None = None

    def __post_init__(self) -> None:
        if len(self.secret_key) < MIN_SECRET_CHARS:
            raise ValueError(
                f"secret_key must have at least {MIN_SECRET_CHARS} characters, got {len(self.secret_key)}"
            )
        if not 1 * KIB <= self.max_body_bytes <= 64 * MIB:
            raise ValueError(f"max_body_bytes must be in 1024..{64 * MIB}, got {self.max_body_bytes}")
        if self.grader_concurrency is not None and not 1 <= self.grader_concurrency <= 256:
            raise ValueError(f"grader_concurrency must be in 1..256, got {self.grader_concurrency}")
        if self.grader_warm_workers is not None and not 0 <= self.grader_warm_workers <= 256:
            raise ValueError(f"grader_warm_workers must be in 0..256, got {self.grader_warm_workers}")
        if self.grader_fork_server not in (None, True, False):
            raise ValueError(f"grader_fork_server must be True, False or None, got {self.grader_fork_server!r}")
        if not 0 <= self.background_start_s <= 600:
            raise ValueError(f"background_start_s must be in 0..600 seconds, got {self.background_start_s}")
        _check_serving(self)
        for prefix, limit in self.body_limits.items():
            if not prefix.startswith("/") or not 1 <= limit <= 256 * MIB:
                raise ValueError(
                    f"body_limits entry {prefix!r}: {limit} must map a path starting with '/' "
                    f"to a limit in 1..{256 * MIB} bytes"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Settings from the environment; keyword overrides win (None means 'not given')."""
        env = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        data_dir = Path(given.pop("data_dir", None) or env.get("STRAIGHTLINE_DATA_DIR") or default_data_dir())
        database_url = given.pop("database_url", None) or env.get("STRAIGHTLINE_DATABASE_URL")
        if not database_url:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            database_url = sqlite_url(data_dir / DB_FILE)
        secret_key = given.pop("secret_key", None) or env.get("STRAIGHTLINE_SECRET_KEY")
        if not secret_key:
            secret_key = load_or_create_secret(data_dir)
        content = given.pop("content_dir", None) or env.get("STRAIGHTLINE_CONTENT_DIR")
        for field_name, var in (("grader_concurrency", "STRAIGHTLINE_GRADER_CONCURRENCY"),
                                ("grader_warm_workers", "STRAIGHTLINE_GRADER_WARM_WORKERS")):
            raw = env.get(var)
            if field_name not in given and raw:
                try:
                    given[field_name] = int(raw)
                except ValueError:
                    raise ValueError(f"{var} must be a whole number, got {raw!r}") from None
        raw = env.get("STRAIGHTLINE_GRADER_FORK_SERVER")
        if "grader_fork_server" not in given and raw:
            if raw not in _SWITCH:
                raise ValueError(f"STRAIGHTLINE_GRADER_FORK_SERVER must be 0 or 1, got {raw!r}")
            given["grader_fork_server"] = _SWITCH[raw]
        _serving_from_env(env, given)
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            data_dir=data_dir,
            content_dir=Path(content) if content else None,
            **given,
        )

    def with_body_limit(self, prefix: str, limit: int) -> "Settings":
        """A copy that allows bodies up to `limit` bytes on paths starting with `prefix`."""
        return replace(self, body_limits={**self.body_limits, prefix: limit})

    def body_limit_for(self, path: str) -> int:
        """The byte limit for a request path: the longest matching prefix in body_limits, else the default.

        A `*` in a prefix stands for one path segment (`/elements/*/submission`).
        """
        best, best_len = self.max_body_bytes, -1
        for prefix, limit in self.body_limits.items():
            if _prefix_matches(prefix, path) and len(prefix) > best_len:
                best, best_len = limit, len(prefix)
        return best


def _prefix_matches(prefix: str, path: str) -> bool:
    if "*" not in prefix:
        return path.startswith(prefix)
    pattern = "".join("[^/]+" if part == "*" else re.escape(part) for part in re.split(r"(\*)", prefix))
    return re.match(pattern, path) is not None


# -- serving a class safely ---------------------------------------------------------------------

def _check_serving(settings: Settings) -> None:
    from .hosts import TrustedProxies, parse_host_rule

    for host in settings.allowed_hosts:
        parse_host_rule(host)  # ValueError names the bad entry
    TrustedProxies(settings.forwarded_allow_ips)
    if settings.grader_per_client is not None and not 1 <= settings.grader_per_client <= 1000:
        raise ValueError(f"grader_per_client must be in 1..1000, got {settings.grader_per_client}")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _serving_from_env(env: Mapping[str, str], given: dict[str, Any]) -> None:
    """The serving settings from the environment, where no keyword gave them."""
    for name, var in (("allowed_hosts", "STRAIGHTLINE_ALLOWED_HOSTS"), ("forwarded_allow_ips", "STRAIGHTLINE_FORWARDED_ALLOW_IPS")):
        if name not in given and env.get(var):
            given[name] = _list(env[var])
    for name, var in (("proxy_headers", "STRAIGHTLINE_PROXY_HEADERS"), ("cookie_secure", "STRAIGHTLINE_COOKIE_SECURE")):
        raw = env.get(var)
        if name not in given and raw:
            if raw not in _SWITCH:
                raise ValueError(f"{var} must be 0 or 1, got {raw!r}")
            given[name] = _SWITCH[raw]
    raw = env.get("STRAIGHTLINE_GRADER_PER_CLIENT")
    if "grader_per_client" not in given and raw:
        try:
            given["grader_per_client"] = int(raw)
        except ValueError:
            raise ValueError(f"STRAIGHTLINE_GRADER_PER_CLIENT must be a whole number, got {raw!r}") from None
    if isinstance(given.get("allowed_hosts"), list):
        given["allowed_hosts"] = tuple(given["allowed_hosts"])
