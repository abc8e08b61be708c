"""Run a recipe's data function (`data.path: module:function`) in a child process with a time limit.

The function is the user's code: it may call sys.exit, raise KeyboardInterrupt, crash the interpreter or
never return. In a child none of that can end or hang the build; each becomes a data error naming the
function. The arrays come back as an .npz written without pickle.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from modelpack.errors import InputError


def call(path: str, timeout_s: float, origin: str) -> dict[str, np.ndarray]:
    """Call `module:function` in a child process and return its arrays; raise InputError on any failure."""
    where = f"{origin}: data.path {path}"
    with tempfile.TemporaryDirectory(prefix="modelpack-data-") as tmp:
        spec = Path(tmp) / "spec.json"
        out, status = Path(tmp) / "arrays.npz", Path(tmp) / "status.json"
        # The child imports with this process's module path, so the same modules resolve in both.
        spec.write_text(json.dumps({"path": path, "sys_path": [str(p) for p in sys.path], "out": str(out),
                                    "status": str(status)}))
        proc = subprocess.Popen([sys.executable, "-m", "modelpack.inputs.data_function", str(spec)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        stderr = b""
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            if not status.is_file():  # threads it left running may outlive a function that did return
                raise InputError(
                    f"{where} did not return within {timeout_s:g} s and was stopped. Make it return sooner, or "
                    "raise data.timeout_s if loading really takes that long."
                ) from None
        finally:
            _end(proc)
        result = json.loads(status.read_text()) if status.is_file() else None
        if result is None:
            last = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()][-1:]
            detail = f": {last[0][:300]}" if last else ""
            raise InputError(f"{where} ended its process (exit code {proc.returncode}) without returning "
                             f"arrays{detail}. It must return a dict of arrays.")
        if not result["ok"]:
            raise InputError(f"{where} failed: {result['error']}.")
        with np.load(out, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def _end(proc: subprocess.Popen) -> None:
    """Stop the child and anything it started (it leads its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


class _Refused(Exception):
    """The function returned something that is not a dict of numeric arrays."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}) instead of returning a dict of arrays"
    if isinstance(exc, KeyboardInterrupt):
        return "it raised KeyboardInterrupt instead of returning a dict of arrays"
    return f"{type(exc).__name__}: {exc}"


def _child(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    sys.path[:] = spec["sys_path"]
    module, _, func = spec["path"].partition(":")
    try:
        arrays = getattr(importlib.import_module(module), func)()
        if not isinstance(arrays, dict):
            raise _Refused(f"it must return a dict of arrays, not {type(arrays).__name__}")
        arrays = {str(k): np.asarray(v) for k, v in arrays.items()}
        objects = [k for k, v in arrays.items() if v.dtype.hasobject]
        if objects:
            raise _Refused(f"array '{objects[0]}' holds Python objects, not numbers; return numeric arrays")
        np.savez(spec["out"], **arrays)
        result = {"ok": True}
    except BaseException as exc:  # noqa: B036 - user code: sys.exit and KeyboardInterrupt are reported too
        result = {"ok": False, "error": _describe(exc)}
    Path(spec["status"]).write_text(json.dumps(result))


if __name__ == "__main__":
    _child(sys.argv[1])
