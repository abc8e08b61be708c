"""Spawn measurement probes in fresh processes and collect what they print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

from modelpack.errors import StepFailedError
from modelpack.files.jsonio import dumps_strict
from modelpack.host.childproc import read

PROBE = Path(__file__).with_name("probe.py")
MARKER = "MODELPACK_PROBE"


def runtime_dir() -> str:
    """Folder of the shipped model_runtime.py (the same file the handlers carry)."""
    return str(resources.files("modelpack.serving") / "common")


def handler_runtime():
    """The shipped model_runtime module itself, for worker code that runs models the way handlers do."""
    return serving_module("model_runtime")


def serving_module(name: str):
    """A module of the shipped serving runtime, imported as the handlers import it: by its bare name from the
    runtime's folder (its modules import each other so, e.g. `from errors import ...`). For the worker and
    probe processes, whose sys.path is theirs to extend."""
    import importlib

    folder = runtime_dir()
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def private_tmp(work: Path) -> dict[str, str]:
    """TMPDIR for a child process inside the build's work folder: whatever temporary files the child leaves
    (killed on a timeout or when the build is stopped) go when the work folder goes."""
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    return {"TMPDIR": str(tmp)}


def run_probe(mode: str, spec: dict, work: Path, timeout_s: float = 900, controller=None) -> dict:
    """Run probe.py MODE in a fresh interpreter; return its JSON result or raise StepFailedError.

    `controller(proc)`, if given, runs beside the probe (for example to throttle its CPU) until it exits.
    """
    spec = {"runtime_dir": runtime_dir(), **spec}
    spec_path = work / f"probe-{mode}-{os.getpid()}-{abs(hash(json.dumps(spec, sort_keys=True)))}.json"
    spec_path.write_text(dumps_strict(spec))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1", **private_tmp(work)}
    # One thread per runtime unless asked: keeps numbers comparable and stops BLAS from oversubscribing.
    env.update({k: str(spec.get("threads", 1)) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    proc = subprocess.Popen([sys.executable, str(PROBE), mode, str(spec_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    thread = threading.Thread(target=controller, args=(proc,), daemon=True) if controller else None
    if thread:
        thread.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise StepFailedError(f"measuring {spec['model']} timed out after {timeout_s:.0f} s") from None
    except BaseException:  # interrupted or terminated: never leave a probe running
        proc.kill()
        proc.wait()
        raise
    finally:
        spec_path.unlink(missing_ok=True)
        if thread:
            thread.join()
    proc.stdout, proc.stderr = stdout, stderr  # type: ignore[assignment]
    result = read(proc.stdout, MARKER, last=True)
    if result is not None:
        return result
    tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit code {proc.returncode}"]
    raise StepFailedError(f"measuring {Path(spec['model']).name} failed: {tail[0][:400]}")
