"""Base classes every build target derives from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from modelpack.recipe.targets import TargetSpecBase

if TYPE_CHECKING:
    from modelpack.targets.context import BuildContext


@dataclass(frozen=True)
class Artifact:
    """A file a target wrote, relative to the output directory."""

    target: str
    path: str
    unzipped_bytes: int | None = None
    details: dict | None = None


class Target:
    """A build target: turns the selected variant into deployable files.

    `NEEDS` names the target kinds whose output this one builds on (it refuses to build without them); `USES`
    those it builds on when the recipe has them. Either way they are built first (`build_order`).
    """

    NAME: ClassVar[str]
    Spec: ClassVar[type[TargetSpecBase]]
    NEEDS: ClassVar[tuple[str, ...]] = ()
    USES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: TargetSpecBase):
        self.spec = spec

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        raise NotImplementedError

    @classmethod
    def model_room(cls, spec: TargetSpecBase) -> int | None:
        """The most model bytes this target can ever carry under its platform's hard limits (None: no such
        limit). A bound known before anything is built, so selection never picks a variant no target can
        package; the exact check runs again when the target is built, with the runtime beside the model."""
        return None


def build_order(specs: Sequence[TargetSpecBase], classes: Mapping[str, type[Target]]) -> list[TargetSpecBase]:
    """The recipe's targets in the order they build: each after every target of a kind it needs or uses, and
    otherwise in the order of `classes` (the registry's), so the report lists artifacts the same way each time."""
    rank = list(classes)
    pending = sorted(specs, key=lambda s: rank.index(s.kind))
    ordered: list[TargetSpecBase] = []
    while pending:
        waiting = {p.kind for p in pending}
        ready = next((s for s in pending if not waiting & set(_after(classes[s.kind]))), None)
        if ready is None:
            raise ValueError(f"targets wait for each other: {', '.join(sorted(waiting))}")
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def _after(target: type[Target]) -> tuple[str, ...]:
    return (*target.NEEDS, *target.USES)
