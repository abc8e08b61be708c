"""The packages of modelpack import each other only along the arrows written here, and the serving runtime
imports nothing of modelpack's.

ALLOWED is the one place the layering is written down: a package may import itself, the core modules
(errors, limits, registry) and the packages listed for it. Adding an import between packages means adding
its arrow here, where a reviewer sees it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.unit.test_imports import PACKAGE, find_cycle, import_graph

CORE = {"errors", "limits", "registry"}
ALLOWED: dict[str, set[str]] = {
    "__main__": {"cli"},
    "(facade)": {"pipeline"},  # modelpack/__init__.py: build() and bench()
    "cli": {"(facade)", "console", "files", "host", "inputs", "local", "pipeline", "publish", "recipe", "report",
            "steps", "tune"},
    "local": {"host", "report", "targets"},
    "publish": {"files", "host", "targets"},
    "tune": {"files", "measure", "recipe"},
    "pipeline": {"console", "files", "host", "inputs", "judge", "measure", "recipe", "report", "steps", "targets"},
    "targets": {"console", "files", "host", "inputs", "measure", "recipe", "report"},
    "steps": {"files", "inputs", "judge", "measure", "recipe", "report"},
    "measure": {"files", "host", "inputs", "judge"},
    "judge": {"recipe"},
    "inputs": {"files", "recipe"},
    "report": {"files"},
    "console": {"recipe"},
    "recipe": set(),
    "files": set(),
    "host": set(),
    "serving": set(),
}


def package_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "(facade)"
    return parts[1]


def package_arrows() -> dict[tuple[str, str], list[str]]:
    """(from package, to package) -> the module imports that make the arrow."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for module, imported in import_graph().items():
        for other in imported:
            a, b = package_of(module), package_of(other)
            if a != b and b not in CORE:
                arrows.setdefault((a, b), []).append(f"{module} -> {other}")
    return arrows


def test_every_package_has_its_arrows_written_down():
    top = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    loose = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert top == set(ALLOWED) - {"(facade)", "__main__"}, "every package has exactly one row in ALLOWED"
    assert loose <= CORE | {"__main__"}, f"loose modules beyond the core: {sorted(loose - CORE)}"


def test_imports_follow_the_allowed_arrows():
    wrong = [f"{a} -> {b}: {', '.join(sorted(how)[:3])}" for (a, b), how in sorted(package_arrows().items())
             if b not in ALLOWED.get(a, set())]
    assert wrong == [], "imports outside the layering (add the arrow to ALLOWED if it is meant):\n" + "\n".join(wrong)


def test_every_allowed_arrow_is_used():
    used = set(package_arrows())
    stale = [f"{a} -> {b}" for a, targets in ALLOWED.items() for b in targets if (a, b) not in used]
    assert stale == [], f"arrows written down that no import makes any more (remove them): {stale}"


def test_the_allowed_arrows_run_one_way():
    graph = {a: set(bs) for a, bs in ALLOWED.items()}
    assert find_cycle(graph) is None


# What the serving runtime may import besides the standard library, numpy and its own modules: the packages a
# build adds beside the handler when the recipe asks for them (modelpack.targets.runtimes and serving_options).
SERVING_EXTRAS = {
    "onnxruntime", "ai_edge_litert", "tflite_runtime",  # the inference runtime of the selected variant
    "PIL",  # serving.image
    "boto3", "botocore",  # model_source from S3
    "azure",  # the Azure Functions worker's library; model_source from Blob Storage
    "redis",  # a shared result cache
    "orjson", "pybase64",  # serving.fast_decoders
    "snapshot_restore_py",  # Lambda SnapStart runtime hooks, present on that runtime only
}


def _serving_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (PACKAGE / "serving").rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: relative import (the files are copied flat)"
                names.add((node.module or "").split(".")[0])
        found[str(path.relative_to(PACKAGE))] = names
    return found


def test_the_serving_runtime_imports_only_the_standard_library_numpy_extras_and_its_siblings():
    siblings = {p.stem for p in (PACKAGE / "serving").rglob("*.py")}
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"} | SERVING_EXTRAS | siblings
    wrong = {path: sorted(names - allowed) for path, names in _serving_imports().items() if names - allowed}
    assert wrong == {}
    assert not any("modelpack" in names for names in _serving_imports().values())


def test_the_serving_runtime_has_no_import_cycle():
    graph = {}
    common = {p.stem for p in (PACKAGE / "serving" / "common").glob("*.py")}
    for path, names in _serving_imports().items():
        if path.startswith("serving/common/"):
            graph[Path(path).stem] = names & common
    assert find_cycle(graph) is None
