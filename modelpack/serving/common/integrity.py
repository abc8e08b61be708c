"""The model file is the one the build measured: its sha256 against the build manifest's.

Shipped inside every generated handler; standard library and errors.py only.
"""

from __future__ import annotations

import hashlib

from errors import IntegrityError, LoadError


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str, expected: str) -> None:
    """Refuse a model file whose bytes are not the ones the build measured (or that cannot be read)."""
    try:
        digest = sha256_of(path)
    except OSError as exc:  # missing or unreadable: the package is incomplete, not the request wrong
        raise LoadError(f"model file {path} cannot be read ({exc.strerror or type(exc).__name__}); the package "
                        "is incomplete: redeploy it") from None
    if digest != expected:
        raise IntegrityError(f"model file {path} has sha256 {digest}, the build manifest says {expected}")
