"""What cache keys are made of: this machine, the tool versions, and the contents of sample files."""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from modelpack.files.output import sha256_file

TOOLS = ("modelpack", "tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx",
         "onnxruntime", "ai-edge-litert", "numpy")
PACKAGE = Path(__file__).resolve().parent.parent  # the modelpack package, whose sources enter every key


def host_id() -> str:
    """This machine for measurement caching: CPU model, cores, Python."""
    import platform

    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.machine()}|{cpu}|{os.cpu_count()}|{platform.python_version()}"


def versions() -> dict[str, str | None]:
    """Versions of every tool whose output could change a step's result (part of cache keys).

    modelpack's own code enters as a hash of its sources, so a changed converter never reuses stale output.
    """
    h = hashlib.sha256()
    for f in sorted(PACKAGE.rglob("*.py")):
        h.update(f.read_bytes())
    out: dict[str, str | None] = {"modelpack-code": h.hexdigest()[:16]}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def npz_digest(path: Path) -> str:
    """Hash of an .npz file's arrays (names and values), independent of how the archive was written."""
    h = hashlib.sha256()
    with np.load(path) as npz:
        for k in sorted(npz.files):
            h.update(k.encode())
            h.update(np.ascontiguousarray(npz[k]).tobytes())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """An .npz file's array hash, or any other file's bytes hash."""
    return npz_digest(path) if path.suffix == ".npz" else sha256_file(path)

