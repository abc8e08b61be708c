"""The shipped serving runtime in tests: fresh imports as a cold start would make them, and single modules
loaded by path."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from tests.helpers.paths import ROOT

# Module names the generated handlers bring; a fresh import must not find an earlier test's copies.
SERVING_MODULES = ("handler", "function_app",
                   *sorted(p.stem for p in (ROOT / "modelpack" / "serving" / "common").glob("*.py")))


@contextmanager
def fresh_import(directory: Path, module: str) -> Iterator[ModuleType]:
    """Import `module` from `directory` as a cold start would (no cached serving modules); on exit sys.path and
    the serving modules in sys.modules are as before."""
    saved_path = list(sys.path)
    saved = {name: sys.modules.pop(name) for name in SERVING_MODULES if name in sys.modules}
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(module)
    finally:
        sys.path[:] = saved_path
        for name in SERVING_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def serving_module(name: str) -> ModuleType:
    """A module of the shipped serving runtime (modelpack/serving/common/NAME.py), loaded by path under a
    private name: neither sys.path nor sys.modules changes."""
    folder = ROOT / "modelpack" / "serving" / "common"
    spec = importlib.util.spec_from_file_location(f"_modelpack_serving_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # Its own imports of sibling modules (`from errors import ...`) resolve in the folder, then are forgotten.
    before = {n for n in SERVING_MODULES if n in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.path.remove(str(folder))
        for n in SERVING_MODULES:
            if n not in before:
                sys.modules.pop(n, None)
    return module
