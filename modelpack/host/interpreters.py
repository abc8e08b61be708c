"""Find a Python interpreter of a given version on the build machine (for bytecode and verification)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

PYENV_ROOTS = (Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions",)


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def host_python() -> str:
    """This interpreter's version as "3.11"."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _version_of(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def find(version: str, explicit: str | None = None) -> str | None:
    """An interpreter for `version` ("3.12"): the explicit one, this one, python3.12 on PATH, or pyenv's."""
    if explicit:
        return explicit if _version_of(explicit) == version else None
    if host_python() == version:
        return sys.executable
    candidates = [shutil.which(f"python{version}")]
    for root in PYENV_ROOTS:
        if root.is_dir():
            candidates += [str(p / "bin" / "python3") for p in sorted(root.glob(f"{version}.*"), reverse=True)]
    for exe in candidates:
        if exe and Path(exe).exists() and _version_of(exe) == version:
            return exe
    return None
