"""Base classes every build target derives from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from modelpack.recipe.targets import TargetSpecBase

if TYPE_CHECKING:
    from modelpack.pipeline.context import BuildContext


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
    Spec: ClassVar[type[TargetSpecBase]]

    def __init__(self, spec: TargetSpecBase):
        self.spec = spec

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        raise NotImplementedError
