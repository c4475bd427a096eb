"""Function lengths in src/: median, 90th percentile, maximum and the longest functions.

A function's length is its number of source lines from the `def` line to its last line,
decorators and docstring included; a nested function counts on its own and inside its parent.

    python scripts/function_lengths.py [ROOT] [--top N] [--exclude PART ...]
"""

from __future__ import annotations

import argparse
import ast
import statistics
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "src"


@dataclass(frozen=True)
class Function:
    path: Path
    name: str  # qualified within its module: Class.method, outer.inner
    line: int
    length: int


def functions_in(path: Path) -> list[Function]:
    """Every function and method defined in one file, with its qualified name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Function] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                length = child.end_lineno - child.lineno + 1
                found.append(Function(path, name, child.lineno, length))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def percentile(values: list[int], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def collect(root: Path, exclude: list[str]) -> list[Function]:
    files = sorted(p for p in root.rglob("*.py") if not any(part in p.parts for part in exclude))
    return [fn for path in files for fn in functions_in(path)]


def report(functions: list[Function], root: Path, top: int) -> str:
    lengths = [fn.length for fn in functions]
    lines = [
        f"functions: {len(lengths)}",
        f"median: {statistics.median(lengths):g}",
        f"p90: {percentile(lengths, 0.9):g}",
        f"max: {max(lengths)}",
        f"over 60: {sum(n > 60 for n in lengths)}",
        f"longest {top}:",
    ]
    for fn in sorted(functions, key=lambda f: -f.length)[:top]:
        where = f"{fn.path.relative_to(root)}:{fn.line}"
        lines.append(f"  {fn.length:4d}  {where}  {fn.name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--exclude", nargs="*", default=[], help="skip paths with this part")
    args = parser.parse_args()
    print(report(collect(args.root, args.exclude), args.root, args.top))


if __name__ == "__main__":
    main()
