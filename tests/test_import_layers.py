"""Packages import downward only: no import cycle between packages, and `cpt.core` at the bottom.

Every module's imports are read with `ast`, at module level and inside functions alike (an import
inside a function is still a dependency; moving it there only hides a cycle until the call). A
package is `cpt.X` for each subpackage or module of `cpt` and the top-level package elsewhere
(`eval`, `data_mixing`, `benchmarks`), so a cycle between two files of one package is not counted.

    python tests/test_import_layers.py        # print the package graph's cycles, if any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cpt", "eval", "data_mixing", "benchmarks")
# The bottom layer: `cpt.core` may import only itself and these leaves, which import nothing from the project.
BOTTOM = "cpt.core"
LEAVES = ("cpt.errors",)
# Packages outside cpt that cpt builds on: what each may import from cpt (eval none of it).
BELOW_CPT = {"eval": (), "data_mixing": (BOTTOM, *LEAVES)}


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Every module under `root`'s packages, by dotted name (a package by its `__init__`)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that `name` imports anywhere in its file (module level, functions, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` only mod.
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    return {_known(m, modules) for m in found if _known(m, modules)}


def _known(dotted: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that `dotted` names or lies in (`a.b.c` of a module `a.b` is `a.b`)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def package_of(module: str) -> str:
    """The node of the package graph: `cpt.X` inside cpt, the top-level package elsewhere."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "cpt" else parts[0]


def package_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, dict[str, set[str]]]:
    """{package: {imported package: the modules of `package` that import it}}, self-imports left out."""
    modules = module_files(root, packages)
    graph: dict[str, dict[str, set[str]]] = {}
    for name, path in modules.items():
        source = package_of(name)
        for target in map(package_of, imported_modules(name, path, modules)):
            if target != source:
                graph.setdefault(source, {}).setdefault(target, set()).add(name)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan), each sorted: every group holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def describe(group: list[str], graph: dict[str, dict[str, set[str]]]) -> str:
    """Which modules make the edges inside one cyclic group, for the failure message."""
    edges = [f"  {a} -> {b}: {', '.join(sorted(graph[a][b]))}" for a in group for b in group if b in graph.get(a, {})]
    return " <-> ".join(group) + "\n" + "\n".join(edges)


def test_no_import_cycle_between_packages():
    graph = package_graph()
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(describe(g, graph) for g in found)


def test_core_imports_nothing_above_it():
    graph = package_graph()
    upward = {target: sorted(mods) for target, mods in graph.get(BOTTOM, {}).items()
              if target.startswith("cpt") and target not in LEAVES}
    assert not upward, f"{BOTTOM} imports from above it: {upward}"
    for leaf in LEAVES:
        above = [t for t in graph.get(leaf, {}) if t.startswith("cpt")]
        assert not above, f"{leaf} is a leaf below {BOTTOM} and imports {above}"


def test_eval_and_data_mixing_import_only_the_bottom_of_cpt():
    graph = package_graph()
    for package, allowed in BELOW_CPT.items():
        above = {t: sorted(m) for t, m in graph.get(package, {}).items() if t.startswith("cpt") and t not in allowed}
        assert not above, f"{package} may import only {allowed or 'nothing'} from cpt, imports {above}"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
    # cpt.a imports cpt.b at module level; cpt.b imports cpt.a inside a function, and relatively.
    _write(tmp_path, {
        "cpt/__init__.py": "",
        "cpt/a/__init__.py": "",
        "cpt/a/one.py": "from cpt.b.two import g\n",
        "cpt/b/__init__.py": "",
        "cpt/b/two.py": "def g():\n    from ..a import one\n    return one\n",
        "cpt/c.py": "import cpt.a.one\n",
    })
    graph = package_graph(tmp_path, ("cpt",))
    assert cycles(graph) == [["cpt.a", "cpt.b"]]
    assert graph["cpt.b"]["cpt.a"] == {"cpt.b.two"}
    # Lifting the inner import out of cpt.b (here: dropping it) breaks the cycle; cpt.c above both is no cycle.
    _write(tmp_path, {"cpt/b/two.py": "def g():\n    return 1\n"})
    assert cycles(package_graph(tmp_path, ("cpt",))) == []


if __name__ == "__main__":
    graph = package_graph()
    for group in cycles(graph):
        print(describe(group, graph), file=sys.stdout)
    core_up = {t: sorted(m) for t, m in graph.get(BOTTOM, {}).items() if t.startswith("cpt") and t not in LEAVES}
    print("core imports above it:", core_up)
