"""Build a runtime's site-packages for a target platform: install wheels, slim, ship bytecode, verify.

One implementation for every zip target (Lambda layer, Azure .python_packages, image contexts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelpack.errors import TargetError
from modelpack.files.output import tree_bytes
from modelpack.host.childproc import pip, pip_tail, read, scrubbed_env, write_source
from modelpack.measure.runner import runtime_dir
from modelpack.targets import handler_check
from modelpack.targets.handler_check import first_error_line
from modelpack.targets.runtimes import COMMON_PRUNE, NUMPY2_PRUNE, Runtime

MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}


def platform_tags(glibc: tuple[int, int], arch: str) -> list[str]:
    """Every manylinux tag a system with this glibc accepts: pip matches --platform tags exactly."""
    machine = MACHINE[arch]
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc[1], 16, -1)]
    return tags + [f"manylinux2014_{machine}"]


def _pip_args(python: str, arch: str, glibc: tuple[int, int], deps: bool = False) -> list[str]:
    abi = "cp" + python.replace(".", "")
    args = ["--only-binary=:all:", *([] if deps else ["--no-deps"]), "--python-version", python,
            "--implementation", "cp", "--abi", abi]
    for tag in platform_tags(glibc, arch):
        args += ["--platform", tag]
    return args


def newest_fitting(package: str, python: str, arch: str, glibc: tuple[int, int]) -> str | None:
    """The newest version of `package` with a wheel for this target, asked of pip without installing."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = pip(["install", "--quiet", "--dry-run", "--ignore-installed", "--report", "-", "--target", tmp,
                    *_pip_args(python, arch, glibc), package])
    try:
        return json.loads(proc.stdout)["install"][0]["metadata"]["version"]
    except (ValueError, KeyError, IndexError):
        return None


def install(runtime: Runtime, python: str, arch: str, glibc: tuple[int, int], pins: dict[str, str], dest: Path,
            os_name: str) -> dict[str, str]:
    """pip-install the runtime's wheels for the target into `dest`; return {package: version}.

    The runtime goes first; numpy follows with the constraint that runtime version needs.
    """
    main, *rest = runtime.packages
    specs = [f"{main}=={pins[main]}" if main in pins else main]
    proc = _pip_target(dest, python, arch, glibc, specs)
    if proc.returncode == 0:
        version = _installed(dest).get(main.lower(), "")
        specs += [f"{p}=={pins[p]}" if p in pins else (runtime.numpy_spec(version) if p == "numpy" else p) for p in rest]
        proc = _pip_target(dest, python, arch, glibc, specs[1:])
    if proc.returncode != 0:
        problems = []
        for package in runtime.packages:
            newest = newest_fitting(package, python, arch, glibc)
            wanted = pins.get(package)
            if newest is None:
                problems.append(f"{package} has no wheel for Python {python} on {os_name} {arch}")
            elif wanted and wanted != newest:
                problems.append(f"{package}=={wanted} has no wheel for it; the newest that installs is {newest}")
        detail = "; ".join(problems) or proc.stderr.strip().splitlines()[-1][:300]
        raise TargetError(
            f"cannot install {', '.join(specs)} for Python {python} on {os_name} "
            f"(glibc {glibc[0]}.{glibc[1]}, {arch}): {detail}. Pin a version that installs (target `versions`), "
            "or choose a newer Python runtime."
        )
    return _installed(dest)


def _pip_target(dest: Path, python: str, arch: str, glibc: tuple[int, int], specs: list[str], deps: bool = False):
    return pip(["install", "--quiet", "--no-compile", "--target", str(dest), *_pip_args(python, arch, glibc, deps),
                *specs])


def _installed(dest: Path) -> dict[str, str]:
    versions = {}
    for info in dest.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        versions[name.lower().replace("_", "-")] = version
    return versions


def slim(tree: Path, runtime: Runtime) -> list[str]:
    """Remove what inference never loads; return the removed paths (relative)."""
    removed = []
    numpy2 = _installed(tree).get("numpy", "").startswith("2.")
    for pattern in (*COMMON_PRUNE, *runtime.prune, *(NUMPY2_PRUNE if numpy2 else ())):
        for path in sorted(tree.glob(pattern), reverse=True):
            if path.exists():
                removed.append(path.relative_to(tree).as_posix())
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return removed


@dataclass
class Verification:
    """What one inference from the tree showed."""

    ok: bool
    modules: list[str] = field(default_factory=list)  # files under the tree that inference imported
    output: list | None = None
    import_ms: float | None = None
    error: str | None = None


VERIFIED, FAILED = "MODELPACK_VERIFY", "MODELPACK_VERIFY_FAILED"

_CHECK = r"""
import json, os, sys, time
try:
    t = time.perf_counter()
    import numpy as np
    import model_runtime
    tree = os.path.realpath(sys.argv[1])
    m = model_runtime.load(sys.argv[2], 1)
    import_ms = (time.perf_counter() - t) * 1e3
    with np.load(sys.argv[3]) as npz:
        feed = {k: npz[k] for k in npz.files}
    out = m.predict(feed)
except BaseException as exc:  # the runtime's own words, first line, whatever failed
    first = (str(exc).strip().splitlines() or [""])[0]
    failure = f"{type(exc).__name__}: {first}"
    """ + write_source(FAILED, "failure") + """
    raise SystemExit(1)
mods = sorted({os.path.realpath(getattr(mod, "__file__", "") or "") for mod in list(sys.modules.values())})
mods = [os.path.relpath(f, tree) for f in mods if f.startswith(tree + os.sep)]
result = {"modules": mods, "output": [np.asarray(o).tolist() for o in out], "import_ms": import_ms}
""" + write_source(VERIFIED, "result") + "\n"


def verify(tree: Path, interpreter: str, model: Path, sample: Path) -> Verification:
    """Run one inference on `sample` (an .npz of named input arrays) with the target interpreter seeing only
    `tree`, numpy and model_runtime.py."""
    env = scrubbed_env([str(tree), runtime_dir()])
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([interpreter, "-S", "-c", _CHECK, str(tree), str(model), str(sample)],
                              capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    data = read(proc.stdout, VERIFIED)
    if data is not None:
        return Verification(True, data["modules"], data["output"], data["import_ms"])
    failure = read(proc.stdout, FAILED)
    if failure is not None:
        return Verification(False, error=failure[:400])
    error = first_error_line(proc.stderr) if proc.stderr.strip() else f"exit code {proc.returncode}"
    return Verification(False, error=error[:400])


_COMPILE = r"""
import py_compile, sys
tree = sys.argv[1]
for rel in sys.argv[2:]:
    py_compile.compile(tree + "/" + rel, cfile=tree + "/" + rel + "c", dfile=rel, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def ship_bytecode(tree: Path, interpreter: str, modules: list[str]) -> int:
    """Replace the imported modules' sources by sourceless, unchecked-hash .pyc from the target Python.

    Lambda's /opt and Azure's package mount are read-only, so Python cannot cache bytecode there and would
    recompile these modules at every cold start. Hash-based .pyc do not depend on zip timestamps.
    """
    sources = [m for m in modules if m.endswith(".py")]
    if not sources:
        return 0
    subprocess.run([interpreter, "-S", "-c", _COMPILE, str(tree), *sources], check=True, capture_output=True)
    for rel in sources:
        (tree / rel).unlink()
    return len(sources)


def prepare(dest: Path, runtime: Runtime, python: str, arch: str, glibc: tuple[int, int], os_name: str,
            pins: dict[str, str], interpreter: str | None, model: Path, sample: dict[str, np.ndarray]) -> dict:
    """Install, slim, verify, ship bytecode, verify again; return what was done (for the report).

    Verification serves `sample`, real evaluation inputs: a synthetic guess at free dimensions (a length
    of 1 for a variable time axis) can fail where the model is fine."""
    installed = install(runtime, python, arch, glibc, pins, dest, os_name)
    naive = tree_bytes(dest)
    removed = slim(dest, runtime)
    info: dict = {"installed": installed, "naive_unzipped_bytes": naive, "removed": len(removed)}
    if interpreter is None:
        why = f"no Python {python} for {arch} can run on this machine (set `interpreter`, or build on {arch})"
        info.update(verified=False, bytecode=0, note=(
            f"not verified and shipped as sources only: {why}. Without .pyc files every cold start recompiles "
            "the runtime's modules (measured on these machines: import numpy+onnxruntime 174 ms vs 67 ms)."))
        return info
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "sample.npz"
        np.savez(feed, **sample)
        first = verify(dest, interpreter, model, feed)
        if not first.ok:
            raise TargetError(_blame(runtime, python, arch, glibc, pins, interpreter, model, feed, sample, first.error))
        compiled = ship_bytecode(dest, interpreter, first.modules)
        second = verify(dest, interpreter, model, feed)
    if not second.ok or second.output != first.output:
        raise TargetError(f"inference from the {runtime.name} tree failed after shipping bytecode ({second.error}).")
    info.update(verified=True, bytecode=compiled, verify_import_ms=round(second.import_ms, 1),
                served_shapes=handler_check.shapes(sample))
    return info


def _blame(runtime: Runtime, python: str, arch: str, glibc: tuple[int, int], pins: dict[str, str], interpreter: str,
           model: Path, feed: Path, sample: dict[str, np.ndarray], error: str | None) -> str:
    """Why inference from the slimmed tree failed: the same check against a fresh, unslimmed install tells
    a slimming rule apart from a model the runtime itself cannot run."""
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "site-packages"
        try:
            install(runtime, python, arch, glibc, pins, whole, "the target")
            unslimmed = verify(whole, interpreter, model, feed)
        except TargetError:
            unslimmed = None
    shown = ", ".join(f"{k} {v}" for k, v in handler_check.shapes(sample).items())
    if unslimmed is not None and not unslimmed.ok:
        return (f"{runtime.name} cannot run the selected model on a real evaluation sample ({shown}): {error}. "
                "The unslimmed runtime fails the same way, so the package contents are not the cause; the model "
                "does not run in this runtime as converted.")
    return (f"inference from the slimmed {runtime.name} tree failed on a real evaluation sample ({shown}): {error}; "
            "the unslimmed runtime runs it, so a slimming rule removed something the runtime needs.")


def cached(ctx, runtime: Runtime, python: str, arch: str, glibc: tuple[int, int], os_name: str,
           pins: dict[str, str], interpreter: str | None, model: Path) -> Path:
    """prepare() through the build cache: the same runtime, target and pins reuse one verified tree."""
    from modelpack.files.cache import cache_key

    key = cache_key("site-packages", runtime.packages, python, arch, glibc, sorted(pins.items()),
                    ctx.versions_key, interpreter is not None)
    return ctx.cached_tree(key, lambda dest: prepare(dest, runtime, python, arch, glibc, os_name, pins,
                                                     interpreter, model, handler_check.sample(ctx)))


def bookkeeping(root: Path):
    """copytree filter dropping the cache's own files at the top of a cached tree."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n in ("modelpack-tree.json", "entry.json")] if Path(directory) == root else []

    return ignore


def install_extra(dest: Path, packages: tuple[str, ...], python: str, arch: str, glibc: tuple[int, int],
                  ctx=None) -> None:
    """Add platform glue (awslambdaric, azure-functions) or request decoders with their dependencies, as the
    platform ships them.

    Installed beside the tree and merged without replacing anything, so the slimmed, verified runtime stays.
    With a build context the installed files come through the build cache: the next build copies them.
    """
    if ctx is not None:
        from modelpack.files.cache import cache_key

        key = cache_key("extra-packages", sorted(packages), python, arch, glibc)
        tree = ctx.cached_tree(key, lambda into: _install_into(into, packages, python, arch, glibc))
        skip = set(bookkeeping(tree)(str(tree), [p.name for p in tree.iterdir()]))
        for item in sorted(tree.iterdir()):
            if item.name not in skip and not (dest / item.name).exists():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, dest / item.name)
        return
    with tempfile.TemporaryDirectory() as tmp:
        _install_into(Path(tmp), packages, python, arch, glibc)
        for item in sorted(Path(tmp).iterdir()):
            if not (dest / item.name).exists():
                shutil.move(str(item), dest / item.name)


def _install_into(dest: Path, packages: tuple[str, ...], python: str, arch: str, glibc: tuple[int, int]) -> dict:
    proc = _pip_target(dest, python, arch, glibc, list(packages), deps=True)
    if proc.returncode != 0:
        raise TargetError(f"cannot install {', '.join(packages)} for Python {python} ({arch}): {pip_tail(proc)}")
    shutil.rmtree(dest / "bin", ignore_errors=True)  # console scripts: nothing a handler runs
    return {"packages": sorted(packages)}
