"""The base model of every recipe section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for every recipe section: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
