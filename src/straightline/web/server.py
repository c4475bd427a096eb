"""`straightline serve`: build the settings, create the app, print the URL, run uvicorn.

    python -m straightline.web.server [--host 127.0.0.1] [--port 8000] [--db URL] [--unsafe-local-grading]
        [--allowed-host NAME ...] [--proxy-headers] [--forwarded-allow-ips IPS] [--cookie-secure]

(the same as `straightline serve`, without the toolkit's command-line machinery).

Connection limits (uvicorn, the h11 parser): the request line and headers together may be at most
`MAX_HEADER_BYTES` (64 KiB; more is answered 400 and the connection closed before the rest is
read); an idle keep-alive connection is closed after `KEEP_ALIVE_S` (5 s); on Ctrl+C requests in
flight get `GRACEFUL_SHUTDOWN_S` (10 s) to finish. Request bodies are limited per route by the app
(web/limits.py). There is no limit on how slowly a client may send its headers: a server open to
a network belongs behind a reverse proxy that has one (docs/web-app.md, "Serving a class safely").
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["serve", "main", "add_serving_arguments", "serving_keywords", "UNSAFE_HELP", "MAX_HEADER_BYTES", "KEEP_ALIVE_S"]

MAX_HEADER_BYTES = 64 * 1024
KEEP_ALIVE_S = 5
GRACEFUL_SHUTDOWN_S = 10

UNSAFE_HELP = (
    "grade Build-It exercises without the bubblewrap sandbox (resource limits only; submissions could "
    "read your files): only for yourself on your own machine, when bubblewrap cannot be installed"
)


def serve(
    host: str = "127.0.0.1", port: int = 8000, db: str | None = None, unsafe_local_grading: bool = False,
    *, allowed_hosts: list[str] | None = None, proxy_headers: bool | None = None,
    forwarded_allow_ips: str | None = None, cookie_secure: bool | None = None,
) -> int:
    """Serve the course on http://host:port/ until interrupted; returns the exit status.

    `db` overrides $STRAIGHTLINE_DATABASE_URL; by default progress goes to a SQLite file in the
    user data directory. A malformed chapter stops start-up with `file:line: what is wrong`.
    `unsafe_local_grading` grades Build-It submissions without the bubblewrap sandbox (one learner
    on their own machine only; the Build-It panels show a warning). The other keywords override
    their STRAIGHTLINE_* variables (web/settings.py); the address listened on is an allowed host.
    """
    started = time.perf_counter()
    overrides = {
        "database_url": db, "unsafe_local_grading": unsafe_local_grading or None,
        "allowed_hosts": allowed_hosts or None, "proxy_headers": proxy_headers or None, "cookie_secure": cookie_secure or None,
        "forwarded_allow_ips": tuple(forwarded_allow_ips.split(",")) if forwarded_allow_ips else None,
    }
    app = _build(host, overrides)
    if app is None:
        return 1
    import gc

    # Everything loaded so far (the course, templates, libraries) lives as long as the process:
    # keep it out of the garbage collector's full sweeps, which would otherwise pause requests.
    gc.freeze()
    _announce(app, host, port, time.perf_counter() - started)
    return _run(app, host, port)


def _build(host: str, overrides: dict):  # -> FastAPI | None
    """The app from the environment and `overrides`; None (after saying why) if it cannot start."""
    from ..course.content import ContentError
    from .app import create_app
    from .settings import Settings

    try:
        settings = _with_listening_host(Settings.from_env(**overrides), host)
        return create_app(settings)
    except ContentError as exc:
        print(f"straightline: the course content is malformed and the app cannot start:\n  {exc}", file=sys.stderr)
    except ValueError as exc:
        print(f"straightline: cannot start: {exc}", file=sys.stderr)
    return None


def _announce(app, host: str, port: int, ready_s: float) -> None:
    """A grading warning (no sandbox, or none possible), then where to open the course."""
    grading = app.state.ctx.grader.availability()
    if grading.unsafe or not grading.ok:
        print(f"straightline: {'WARNING: ' if grading.unsafe else ''}{grading.message}", file=sys.stderr, flush=True)
    shown_host = f"[{host}]" if ":" in host else host
    where = app.state.ctx.store.engine.url.render_as_string(hide_password=True)
    print(
        f"Understand Flow Matching: open http://{shown_host}:{port}/ in your browser "
        f"(ready in {ready_s:.1f} s; progress in {where}; Ctrl+C stops)",
        flush=True,
    )


def _run(app, host: str, port: int) -> int:
    """Serve until interrupted; 1 if the port could not be listened on."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
        http="h11", h11_max_incomplete_event_size=MAX_HEADER_BYTES, timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        proxy_headers=False,  # the app believes X-Forwarded-* itself, from trusted proxies only (web/hosts.py)
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        print(f"straightline: could not listen on {host}:{port} (is another server using the port?)", file=sys.stderr)
        return 1
    return 0


def _with_listening_host(settings, host: str):  # (Settings, str) -> Settings
    """The address the server listens on (unless a wildcard) is a name it answers to."""
    from dataclasses import replace

    if host in ("0.0.0.0", "::", "") or host in settings.allowed_hosts:
        return settings
    return replace(settings, allowed_hosts=(*settings.allowed_hosts, f"[{host}]" if ":" in host else host))


def _checked(check):
    """An argparse type that runs `check` (web/hosts.py) and turns its ValueError into a usage error."""

    def parse(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    """`--allowed-host`, `--proxy-headers`, `--forwarded-allow-ips`, `--cookie-secure` (shared with the CLI)."""
    from .hosts import TrustedProxies, parse_host_rule

    parser.add_argument(
        "--allowed-host", action="append", default=None, metavar="NAME", dest="allowed_hosts", type=_checked(parse_host_rule),
        help="a host name (or name:port, *.domain, IP) to answer to besides 127.0.0.1, localhost and [::1]; "
        "repeatable (default: $STRAIGHTLINE_ALLOWED_HOSTS, comma-separated). Other Host headers get 400",
    )
    parser.add_argument(
        "--proxy-headers", action="store_true", default=None,
        help="behind a reverse proxy: believe X-Forwarded-For/-Proto/-Host from --forwarded-allow-ips "
        "(default: $STRAIGHTLINE_PROXY_HEADERS=1, else off)",
    )
    parser.add_argument(
        "--forwarded-allow-ips", default=None, metavar="IPS", type=_checked(lambda t: TrustedProxies(t.split(","))),
        help="comma-separated addresses or networks of the trusted proxies "
        "(default: $STRAIGHTLINE_FORWARDED_ALLOW_IPS, else 127.0.0.1,::1)",
    )
    parser.add_argument(
        "--cookie-secure", action="store_true", default=None,
        help="mark the learner cookie Secure (served over HTTPS; default: $STRAIGHTLINE_COOKIE_SECURE=1, else off)",
    )


def serving_keywords(args: argparse.Namespace) -> dict:
    """`serve`'s keyword arguments from parsed arguments."""
    return {
        "host": args.host, "port": args.port, "db": args.db, "unsafe_local_grading": args.unsafe_local_grading,
        "allowed_hosts": args.allowed_hosts, "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": args.forwarded_allow_ips, "cookie_secure": args.cookie_secure,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m straightline.web.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default=None, metavar="URL")
    parser.add_argument("--unsafe-local-grading", action="store_true", help=UNSAFE_HELP)
    add_serving_arguments(parser)
    return serve(**serving_keywords(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
