"""Recognise a model file by its content (not its extension) and fingerprint it; no TensorFlow here."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from modelpack.errors import InputError
from modelpack.files.output import sha256_file

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FORMATS = ("keras3", "tf-keras", "tf-keras-h5", "savedmodel")


@dataclass(frozen=True)
class ModelFile:
    path: Path
    format: str  # one of FORMATS
    sha256: str
    size_bytes: int
    keras_version: str | None = None


def detect(path: Path) -> ModelFile:
    """Identify a Keras 3 / tf-keras `.keras`, an HDF5 `.h5`, or a SavedModel directory."""
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise InputError(f"{path}: a directory model must be a SavedModel with saved_model.pb.")
        digest = hashlib.sha256()
        size = 0
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f.relative_to(path).as_posix().encode())
            digest.update(sha256_file(f).encode())
            size += f.stat().st_size
        return ModelFile(path, "savedmodel", digest.hexdigest(), size)
    if not path.is_file():  # a device or a pipe would be read forever (or block) while hashing
        raise InputError(
            f"{path}: not a regular file (a device, pipe or socket). "
            "Point model.path at the file written by model.save()."
        )
    with open(path, "rb") as f:
        head = f.read(8)
    size = path.stat().st_size
    if head == HDF5_MAGIC:
        return ModelFile(path, "tf-keras-h5", sha256_file(path), size)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                meta = json.loads(zf.read("metadata.json"))
        except (KeyError, ValueError, zipfile.BadZipFile):
            raise InputError(
                f"{path}: a zip without a readable metadata.json is not a Keras model. "
                "Save it with model.save('model.keras')."
            ) from None
        version = str(meta.get("keras_version", ""))
        fmt = "keras3" if version.startswith("3") else "tf-keras"
        return ModelFile(path, fmt, sha256_file(path), size, version or None)
    raise InputError(
        f"{path}: not a Keras model (.keras zip or HDF5 .h5) nor a SavedModel directory. "
        "Point model.path at the file written by model.save()."
    )
