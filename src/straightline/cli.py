"""The `straightline` command: serve the course, train and sample models, grade Build-It exercises.

    straightline serve [--host 127.0.0.1] [--port 8000] [--db URL] [--unsafe-local-grading]
                       [--allowed-host NAME ...] [--proxy-headers] [--forwarded-allow-ips IPS] [--cookie-secure]
    straightline train --data moons --steps 5000 --out moons.safetensors
    straightline sample --model moons.safetensors --steps 20 --method rk4 --out samples.npy
    straightline grade cfm_loss my_solution.py
    straightline build-figures [--only NAME ...] [--out DIR]

Usage errors exit with status 2 and a message naming the bad value and what is accepted.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

__all__ = ["main", "build_parser", "missing_course_modules"]

#: what `serve` needs beyond the toolkit: the `straightline[course]` extra
COURSE_MODULES = ("fastapi", "uvicorn", "jinja2", "sqlalchemy", "alembic", "markdown_it", "latex2mathml")


def missing_course_modules() -> list[str]:
    """The course extra's modules that are not installed (empty when `pip install straightline[course]` ran)."""
    return [name for name in COURSE_MODULES if not _installed(name)]


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def _positive_int(name: str, upper: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < 1 or (upper is not None and value > upper):
            bound = f"1..{upper}" if upper is not None else ">= 1"
            raise argparse.ArgumentTypeError(f"{name} must be in {bound}, got {value}")
        return value

    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer in 1..65535, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be an integer in 1..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="straightline", description="Flow matching toolkit and course.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="serve the course 'Understand Flow Matching' in your browser")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default: 8000)")
    p.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="progress database URL (default: $STRAIGHTLINE_DATABASE_URL or a SQLite file in the user data dir)",
    )
    from .web.server import UNSAFE_HELP, add_serving_arguments

    p.add_argument("--unsafe-local-grading", action="store_true", help=UNSAFE_HELP)
    add_serving_arguments(p)

    p = sub.add_parser("build-models", help="train the small models the course ships (fixed seeds)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="build only these models (default: all)")
    p.add_argument("--out", default=None, metavar="DIR", help="write here instead of the package's weights/ folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_build_models)

    p = sub.add_parser("build-figures", help="draw the course's static figures as SVG (needs the figures extra)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="build only these figures (default: all)")
    p.add_argument("--out", default=None, metavar="DIR", help="write here instead of the package's figures/svg/ folder")
    p.set_defaults(handler=_build_figures)

    from .cli_toolkit import add_toolkit_commands

    add_toolkit_commands(sub, _positive_int)

    from .cli_grade import add_grade_command

    add_grade_command(sub)
    return parser


def _build_models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .course import shipped

    known = [s.name for s in shipped.SPECS]
    unknown = [n for n in (args.only or []) if n not in known]
    if unknown:
        parser.error(f"--only: unknown model(s) {unknown}; accepted: {', '.join(known)}")
    shipped.build(args.only, args.out, progress=not args.quiet)
    return 0


def _build_figures(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .course.figures import FIGURES

    unknown = [n for n in (args.only or []) if n not in FIGURES]
    if unknown:
        parser.error(f"--only: unknown figure(s) {unknown}; accepted: {', '.join(FIGURES)}")
    if not _installed("matplotlib"):
        print("straightline build-figures needs matplotlib; install it with: pip install 'straightline[figures]'",
              file=sys.stderr)
        return 2
    from .course.figures.build import build

    build(args.only, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        missing = missing_course_modules()
        if missing:
            print(f"straightline serve needs the course extra (missing: {', '.join(missing)}); install it with: "
                  "pip install 'straightline[course]'", file=sys.stderr)
            return 2
        from .web.server import serve, serving_keywords

        return serve(**serving_keywords(args))
    return args.handler(args, parser)


if __name__ == "__main__":
    sys.exit(main())
