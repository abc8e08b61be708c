"""The package's import structure: reading a recipe loads no packaging code, and modules import in layers."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "modelpack"
# Modules of modelpack.targets that hold no target implementation (the registry and its base classes).
TARGET_INFRASTRUCTURE = {"modelpack.targets", "modelpack.targets.base"}

LOADED = """
import json, sys
import modelpack.cli.main
from modelpack.recipe.loader import load_recipe
load_recipe('recipes/digits/recipe.yaml')
before = sorted(sys.modules)
try:
    modelpack.cli.main.cli.main(['validate', 'recipes/digits/recipe.yaml'], standalone_mode=False)
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps({"load_recipe": before, "validate": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    """Modules in sys.modules after reading the digits recipe, and after `modelpack validate` on it."""
    out = subprocess.run([sys.executable, "-c", LOADED], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("when", ["load_recipe", "validate"])
def test_reading_a_recipe_loads_no_target_or_tensorflow(loaded, when):
    modules = loaded[when]
    targets = [m for m in modules if m.startswith("modelpack.targets") and m not in TARGET_INFRASTRUCTURE]
    assert targets == [], f"{when} loaded target implementations: {targets}"
    assert not [m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")]
    assert "modelpack.pipeline.stages" not in modules and "modelpack.pipeline.build" not in modules


def test_every_registered_target_builds_from_its_recipe_spec():
    from modelpack.recipe.targets import TARGET_SPECS
    from modelpack.targets import TARGETS
    from modelpack.targets import catalog as _catalog  # noqa: F401  (registers every target)

    assert TARGETS.names() == list(TARGET_SPECS)
    assert all(t.Spec is TARGET_SPECS[t.NAME] for t in TARGETS)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """modelpack modules this module imports anywhere: at module level, under `if TYPE_CHECKING:`, and
    inside functions (a lazy import still makes the two modules depend on each other)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "serving" not in p.parts}
    modules = set(files)
    return {name: _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert "modelpack.targets.context" in graph["modelpack.targets.lambda_layer"]  # TYPE_CHECKING imports count
    assert "modelpack.pipeline.entry" in graph["modelpack.cli.build"]  # imports inside functions count
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
