"""The per-test report as plain text (the CLI prints it; the web page shows the same facts)."""

from __future__ import annotations

from .results import GradeResult

__all__ = ["format_report"]

_MARK = {"passed": "PASS", "failed": "FAIL", "timeout": "TIME", "not_run": " -- "}


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def format_report(result: GradeResult, *, show_output: bool = True) -> str:
    """Header, one line per test in order, then the first failure (or the problem) in full."""
    lines: list[str] = []
    if result.warning:
        lines += [f"WARNING: {result.warning}", ""]
    total = len(result.tests)
    if result.status == "passed":
        lines.append(f"{result.exercise}: all {total} tests passed.")
    elif result.status == "infrastructure_error":
        lines.append(f"{result.exercise}: not graded (grader failure; not counted as an attempt).")
    elif result.status == "syntax_error":
        lines.append(f"{result.exercise}: syntax error, no test ran.")
    else:
        lines.append(f"{result.exercise}: {result.passed_count} of {total} tests passed.")
    if result.tests and result.status not in ("syntax_error", "infrastructure_error"):
        lines.append("")
        for i, test in enumerate(result.tests, 1):
            kind = "example" if test.visible else "hidden"
            lines.append(f"  {_MARK[test.status]}  {i}. {test.name} ({kind})")
    if result.status != "passed":
        lines += ["", _indent(result.message, "  ")]
    if show_output and result.output:
        cut = " (cut off at the output limit)" if result.output_truncated else ""
        lines += ["", f"Output of your code{cut}:", _indent(result.output.rstrip("\n"))]
    return "\n".join(lines)
