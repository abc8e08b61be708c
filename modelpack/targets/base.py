"""Base classes every build target derives from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from modelpack.recipe.base import Strict

if TYPE_CHECKING:
    from modelpack.pipeline.context import BuildContext


class TargetSpecBase(Strict):
    """Recipe options common to every target; subclasses add `kind: Literal[...]` and their own fields."""

    kind: str

    def identity(self) -> str:
        """What makes two targets of one kind different (duplicates are refused)."""
        return self.kind


@dataclass(frozen=True)
class Artifact:
    """A file a target wrote, relative to the output directory."""

    target: str
    path: str
    unzipped_bytes: int | None = None
    details: dict | None = None


class Target:
    """A build target: turns the selected variant into deployable files."""

    NAME: ClassVar[str]
    PURPOSE: ClassVar[str]
    Spec: ClassVar[type[TargetSpecBase]]

    def __init__(self, spec: TargetSpecBase):
        self.spec = spec

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        raise NotImplementedError
