"""Import graph of the `straightline` package: cycles, and private names imported across modules.

Reads src/ with `ast` (runs nothing). An import inside a function counts like one at the top.
A C extension (a module with no .py source) is no node, so importing it is no cycle.

    python scripts/import_graph.py [SRC]     exit status 1 when it finds a cycle or a private import
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "straightline"


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_extension(src: Path, module: str) -> bool:
    """Whether `module` is a compiled extension (a .so/.pyd file) inside src/."""
    *parents, leaf = module.split(".")
    folder = src.joinpath(*parents)
    return any(folder.glob(f"{leaf}.*.so")) or any(folder.glob(f"{leaf}.*.pyd"))


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module named by a (possibly relative) `from X import ...`."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, src: Path, modules: set[str]) -> tuple[set[str], list[str]]:
    """(modules of the package this file imports, private names it imports from other modules)."""
    module = module_name(path, src)
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    private: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            source = resolve(node, module, is_package)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:
                    targets.add(submodule)
                elif is_extension(src, submodule):
                    continue  # a compiled module of the package: no node, no cycle
                elif source in modules:
                    targets.add(source)
                    if alias.name.startswith("_") and source != module:
                        private.append(f"{module}:{node.lineno} imports {source}.{alias.name}")
    targets.discard(module)
    return targets, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def package_modules(src: Path) -> dict[str, Path]:
    return {module_name(p, src): p for p in sorted((src / PACKAGE).rglob("*.py"))}


def cycle_free(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without edges from a package to its own submodules (`__init__` re-exports)."""
    return {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}


def main() -> int:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SRC
    paths = package_modules(src)
    graph: dict[str, set[str]] = {}
    private: list[str] = []
    for module, path in paths.items():
        graph[module], names = imports_of(path, src, set(paths))
        private += names
    found = cycles(cycle_free(graph))
    print(f"modules: {len(paths)}  edges: {sum(map(len, graph.values()))}")
    print(f"cycles: {len(found)}")
    for component in found:
        print(f"  {len(component)} modules: " + " <-> ".join(component))
    print(f"private names imported from other modules: {len(private)}")
    for line in private:
        print("  " + line)
    return 1 if found or private else 0


if __name__ == "__main__":
    sys.exit(main())
