"""The package's import graph is a tree of layers: no module imports, however indirectly, a module that
imports it back, counting the imports inside functions.

Each edge is what Python runs: `from beanstrain.engines.registry import ENGINES` in `objectives` imports
`beanstrain.engines` (its `__init__`) first, then `beanstrain.engines.registry`; a package that is an
ancestor of the importing module is already being imported, so it is no edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "beanstrain"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that importing `name` runs, directly: every import statement, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: counted from the module's own package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in modules:
                found.add(target)
                found.update(parent for parent in ancestors(target) if parent in modules)
    mine = set(ancestors(name))
    return {target for target in found if target != name and target not in mine}


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends on the same module, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for after in sorted(edges[node]):
            if state.get(after) == "open":
                return stack[stack.index(after):] + [after]
            if after not in state:
                cycle = visit(after)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_an_import_through_a_package_counts_its_init(tmp_path):
    modules = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.low": tmp_path / "pkg" / "low.py",
               "user": tmp_path / "user.py"}
    for path in modules.values():
        path.parent.mkdir(exist_ok=True)
    modules["user"].write_text("def late():\n    from pkg.low import thing\n")
    modules["pkg.low"].write_text("from pkg import other\n")
    modules["pkg"].write_text("")
    assert imported("user", modules["user"], modules) == {"pkg", "pkg.low"}
    assert imported("pkg.low", modules["pkg.low"], modules) == set()  # its own package is no edge


@pytest.mark.parametrize("package", ["beanstrain.engines", "beanstrain.data", "beanstrain.plots"])
def test_a_package_init_only_re_exports(package):
    """An `__init__` holds a docstring, imports and `__all__`: no code of its own (keras's callbacks/__init__)."""
    path = module_names()[package]
    for node in ast.parse(path.read_text()).body:
        assert isinstance(node, (ast.Expr, ast.Import, ast.ImportFrom)) or (
            isinstance(node, ast.Assign) and [target.id for target in node.targets] == ["__all__"]), (
            f"{path.name} of {package} line {node.lineno} is not an import")


@pytest.mark.parametrize("registry", ["beanstrain.engines.registry", "beanstrain.data.registry"])
def test_a_registry_imports_nothing_it_lists(registry):
    """The engine registry names its engines' modules as strings; the dataset registry imports only the formulas."""
    listed = {"beanstrain.engines.registry": {"beanstrain.engines.compiled", "beanstrain.engines.keras_fit",
                                             "beanstrain.engines.numpy_engine", "beanstrain.engines.levels"},
              "beanstrain.data.registry": {"beanstrain.data.locate", "beanstrain.data.loading"}}[registry]
    assert not graph()[registry] & listed
