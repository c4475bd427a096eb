"""`straightline grade EXERCISE FILE`: grade a Build-It solution from the terminal.

Prints the same per-test report as the course page. Exit status: 0 when every test passes, 1
otherwise (a failed test, a syntax error, a timeout, or a grader that could not run), 2 for usage
errors (an unknown exercise, a file that cannot be read).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# the grader's torch-free catalog: building the parser stays cheap
from .grader.catalog import EXERCISE_NAMES

__all__ = ["add_grade_command"]


def add_grade_command(sub) -> None:
    names = ", ".join(EXERCISE_NAMES)
    p = sub.add_parser(
        "grade",
        help="grade your solution to a Build-It exercise",
        description=f"Grade FILE as a solution to EXERCISE ({names}) in the same sandbox as the course page.",
    )
    p.add_argument("exercise", metavar="EXERCISE", help=f"one of: {names}")
    p.add_argument("file", metavar="FILE", type=Path, help="the Python file with your function")
    p.add_argument(
        "--unsafe-local-grading",
        action="store_true",
        help="grade without the bubblewrap sandbox (resource limits only): for your own code on your own machine",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of the report")
    p.set_defaults(handler=_grade)


def _grade(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .grader import EXERCISES, Grader, GraderSettings, SubmissionRefused, format_report

    if args.exercise not in EXERCISES:
        parser.error(f"unknown exercise {args.exercise!r}; accepted: {', '.join(EXERCISES)}")
    try:
        code = args.file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        parser.error(f"FILE {str(args.file)!r} does not exist")
    except IsADirectoryError:
        parser.error(f"FILE {str(args.file)!r} is a directory, not a Python file")
    except OSError as exc:
        parser.error(f"cannot read FILE {str(args.file)!r}: {exc.strerror}")
    except UnicodeDecodeError:
        parser.error(f"FILE {str(args.file)!r} is not UTF-8 text")

    settings = GraderSettings(max_concurrent=1, warm_workers=0, unsafe_local=args.unsafe_local_grading)
    grader = Grader(settings)
    availability = grader.availability()
    if not availability.ok:
        print(availability.message, file=sys.stderr)
        return 1
    if availability.unsafe:
        print(f"WARNING: {availability.message}", file=sys.stderr)
    try:
        result = grader.grade(args.exercise, code)
    except SubmissionRefused as exc:
        print(exc.message, file=sys.stderr)
        return 1
    finally:
        grader.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_report(result))
    return 0 if result.passed else 1
