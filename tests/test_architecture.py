"""The package's shape: imports between pcflow's modules go one way (no cycles), and no module or class grows too long.

The import graph is read from the source with `ast`, nothing is imported. Every `import` statement counts, those
inside functions too: a deferred import saves start-up time but still makes its module depend on the one it names,
so it must point downwards like any other. Importing a module runs its parent packages' `__init__` first; those
implicit edges are not counted (a package re-exporting its submodules is no cycle), an explicit
``from .. import name`` of a name defined in a parent's `__init__` is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pcflow

PACKAGE = Path(pcflow.__file__).parent
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package in folder `root`."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:k]) for k in range(1, len(parts))}


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` (source in `path`) imports anywhere in its code."""
    package = module if _is_package(path) else module.rpartition(".")[0]
    skip = _ancestors(module) | {module}  # already imported before `module` runs
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found |= {".".join(parts[:k]) for k in range(1, len(parts) + 1)} - skip
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
            found |= submodules
            if base not in skip:
                found |= {base} | (_ancestors(base) - skip)
            elif len(submodules) < len(node.names) and base != module:  # a name of a parent's __init__
                found.add(base)
    return {name for name in found if name in modules and name != module}


def import_graph(root: Path = PACKAGE, package: str = "pcflow") -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = module_files(root, package)
    return {module: imports_of(module, path, modules) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module: [a, b, ..., a], each a -> b an import."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, component) for component in components]


def _cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest import path from the component's first module back to itself, within the component."""
    start = min(component)
    paths = {target: [start, target] for target in sorted(graph[start] & component)}
    frontier = list(paths)
    while start not in paths:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    return paths[start]


def test_the_package_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_the_graph_sees_relative_deferred_and_package_imports(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("VERSION = 1\n")
    (root / "sub" / "__init__.py").write_text("from .low import thing\n")
    (root / "sub" / "low.py").write_text("def thing():\n    from ..high import other\n")
    (root / "sub" / "mid.py").write_text("from . import low\nfrom .. import VERSION\n")
    (root / "high.py").write_text("import pkg.sub.mid\n\ndef other():\n    pass\n")
    graph = import_graph(root, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.sub": {"pkg.sub.low"},
        "pkg.sub.low": {"pkg.high"},  # inside a function
        "pkg.sub.mid": {"pkg.sub.low", "pkg"},  # the parent package pkg.sub is not an edge, pkg's name is
        "pkg.high": {"pkg.sub", "pkg.sub.mid"},
    }
    # pkg.sub.low -> pkg.high -> pkg.sub.mid -> pkg.sub.low, and pkg.high -> pkg.sub -> pkg.sub.low -> pkg.high
    (cycle,) = cycles(graph)
    assert cycle[0] == cycle[-1] == "pkg.high" and len(cycle) == 4
    assert all(b in graph[a] for a, b in zip(cycle, cycle[1:]))


def test_the_graph_of_pcflow_holds_the_pipelines_imports():
    graph = import_graph()
    assert "pcflow.pipeline.stream" in graph["pcflow.pipeline.reconstruct"]  # from . import stream
    assert "pcflow.viz" in graph["pcflow.pipeline.reconstruct"]  # deferred: the preview
    assert "pcflow.pipeline.reconstruct" not in graph["pcflow.pipeline.stream"]


@pytest.mark.parametrize("module", sorted(module_files(PACKAGE, "pcflow")))
def test_no_module_or_class_is_too_long(module):
    path = module_files(PACKAGE, "pcflow")[module]
    text = path.read_text()
    n_lines = len(text.splitlines())
    assert n_lines <= MAX_MODULE_LINES, f"{module} has {n_lines} lines; at most {MAX_MODULE_LINES}"
    long_classes = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(ast.parse(text))
                    if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES}
    assert not long_classes, f"{module}: classes over {MAX_CLASS_LINES} lines: {long_classes}"
