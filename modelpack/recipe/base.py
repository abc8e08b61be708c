"""The base model of every recipe section."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Strict(BaseModel):
    """Base for every recipe section: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: str | None, info: ValidationInfo, *, directory: bool = False) -> str | None:
    """Resolve a path relative to the recipe file and check it exists."""
    if value is None:
        return None
    base = Path((info.context or {}).get("base_dir", "."))
    path = (base / value).resolve()
    if (info.context or {}).get("check_files", True):
        if not path.exists():
            raise ValueError(f"file not found: {path}; paths are relative to the recipe file")
        if directory is False and path.is_dir() and not (path / "saved_model.pb").exists():
            raise ValueError(f"{path} is a directory but not a SavedModel (no saved_model.pb)")
        if not path.is_dir() and not path.is_file():  # reading a device or a pipe never ends
            raise ValueError(f"{path} is not a regular file (a device, pipe or socket); name the file itself")
    return str(path)
