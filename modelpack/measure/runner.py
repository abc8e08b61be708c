"""Spawn measurement probes in fresh processes and collect what they print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from modelpack.errors import StepFailedError

PROBE = Path(__file__).with_name("probe.py")
MARK = "MODELPACK_PROBE "


def runtime_dir() -> str:
    """Folder of the shipped model_runtime.py (the same file the handlers carry)."""
    return str(resources.files("modelpack.layer_templates") / "common")


def run_probe(mode: str, spec: dict, work: Path, timeout_s: float = 900) -> dict:
    """Run probe.py MODE in a fresh interpreter; return its JSON result or raise StepFailedError."""
    spec = {"runtime_dir": runtime_dir(), **spec}
    spec_path = work / f"probe-{mode}-{os.getpid()}-{abs(hash(json.dumps(spec, sort_keys=True)))}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    # One thread per runtime unless asked: keeps numbers comparable and stops BLAS from oversubscribing.
    env.update({k: str(spec.get("threads", 1)) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    try:
        proc = subprocess.run(
            [sys.executable, str(PROBE), mode, str(spec_path)],
            capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise StepFailedError(f"measuring {spec['model']} timed out after {timeout_s:.0f} s") from None
    finally:
        spec_path.unlink(missing_ok=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit code {proc.returncode}"]
    raise StepFailedError(f"measuring {Path(spec['model']).name} failed: {tail[0][:400]}")
