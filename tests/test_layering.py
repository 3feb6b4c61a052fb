"""Imports run one way, cli → library → bundle, without cycles; typer and rich only in cli/.

The import graph is read from the source (module-level and deferred imports alike), so a cycle
that only closes at run time is caught too. An import of a module's own ancestor package is not
an edge (Python has run the ancestor's `__init__` first anyway).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ssdd_cli"
# The format's layer: it may use only these library modules (and the package's version).
BUNDLE_MAY_IMPORT = {"ssdd_cli", "ssdd_cli.errors", "ssdd_cli.io"}


def modules(root: Path) -> dict[str, Path]:
    """{dotted module name: file} of every module of the package at `root`."""
    out = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def imported(module: str, path: Path) -> set[str]:
    """Every dotted name `module` imports (`from a import b` gives a and a.b), anywhere in it."""
    names: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, ancestor packages left out."""
    mods = modules(root)
    return {m: {t for t in imported(m, f) if t in mods and t != m and not m.startswith(t + ".")}
            for m, f in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_imports_run_cli_to_library_to_bundle() -> None:
    mods = modules(PACKAGE)
    for module, path in mods.items():
        names = imported(module, path)
        # `python -m ssdd_cli` (`__main__`) is the command line's entry point, above the CLI.
        in_cli = module.startswith("ssdd_cli.cli") or module == "ssdd_cli.__main__"
        ui = sorted(n for n in names if n.split(".")[0] in ("typer", "rich", "click"))
        assert in_cli or not ui, f"{module} imports {ui}: only ssdd_cli.cli may"
        if not in_cli:
            assert not any(n.startswith("ssdd_cli.cli") for n in names), f"{module} imports the CLI"
        if module.startswith("ssdd_cli.bundle"):
            library = sorted(n for n in names & set(mods) if not n.startswith("ssdd_cli.bundle")
                             and n not in BUNDLE_MAY_IMPORT)
            assert not library, f"{module} (the format) imports the library: {library}"


def test_the_check_finds_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.a import x\n")
    (pkg / "sub" / "a.py").write_text("from pkg import b\nx = 1\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import a  # deferred\n")
    assert cycles(import_graph(pkg)) == [["pkg.b", "pkg.sub", "pkg.sub.a"]]


@pytest.mark.parametrize("package", ["ssdd_cli.data", "ssdd_cli.models", "ssdd_cli.teacher", "ssdd_cli.train",
                                     "ssdd_cli.distill.run", "ssdd_cli.artifact", "ssdd_cli.bundle"])
def test_library_does_not_load_typer_or_rich(package: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({package!r}); "
            "print(','.join(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
