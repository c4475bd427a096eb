"""`straightline serve`: build the settings, create the app, print the URL, run uvicorn.

    python -m straightline.web.server [--host 127.0.0.1] [--port 8000] [--db URL] [--unsafe-local-grading]

(the same as `straightline serve`, without the toolkit's command-line machinery).
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["serve", "main", "UNSAFE_HELP"]

UNSAFE_HELP = (
    "grade Build-It exercises without the bubblewrap sandbox (resource limits only; submissions could "
    "read your files): only for yourself on your own machine, when bubblewrap cannot be installed"
)


def serve(host: str = "127.0.0.1", port: int = 8000, db: str | None = None, unsafe_local_grading: bool = False) -> int:
    """Serve the course on http://host:port/ until interrupted; returns the exit status.

    `db` overrides $STRAIGHTLINE_DATABASE_URL; by default progress goes to a SQLite file in the
    user data directory. A malformed chapter stops start-up with `file:line: what is wrong`.
    `unsafe_local_grading` grades Build-It submissions without the bubblewrap sandbox (one learner
    on their own machine only; the Build-It panels show a warning).
    """
    started = time.perf_counter()
    from ..course.content import ContentError
    from .app import create_app
    from .settings import Settings

    try:
        settings = Settings.from_env(database_url=db, unsafe_local_grading=unsafe_local_grading or None)
        app = create_app(settings)
    except ContentError as exc:
        print(f"straightline: the course content is malformed and the app cannot start:\n  {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"straightline: cannot start: {exc}", file=sys.stderr)
        return 1

    import gc

    import uvicorn

    # Everything loaded so far (the course, templates, libraries) lives as long as the process:
    # keep it out of the garbage collector's full sweeps, which would otherwise pause requests.
    gc.freeze()

    grading = app.state.ctx.grader.availability()
    if grading.unsafe or not grading.ok:
        print(f"straightline: {'WARNING: ' if grading.unsafe else ''}{grading.message}", file=sys.stderr, flush=True)

    shown_host = f"[{host}]" if ":" in host else host
    store = app.state.ctx.store
    where = store.engine.url.render_as_string(hide_password=True)
    print(
        f"Understand Flow Matching: open http://{shown_host}:{port}/ in your browser "
        f"(ready in {time.perf_counter() - started:.1f} s; progress in {where}; Ctrl+C stops)",
        flush=True,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        print(f"straightline: could not listen on {host}:{port} (is another server using the port?)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m straightline.web.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default=None, metavar="URL")
    parser.add_argument("--unsafe-local-grading", action="store_true", help=UNSAFE_HELP)
    args = parser.parse_args(argv)
    return serve(host=args.host, port=args.port, db=args.db, unsafe_local_grading=args.unsafe_local_grading)


if __name__ == "__main__":
    sys.exit(main())
