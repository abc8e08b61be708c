"""Stage: one named step of a build, with the BuildState fields it reads and writes and a purpose people read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelpack.pipeline.state import BuildState


@dataclass(frozen=True)
class Stage:
    """A stage of the build. `run(state)` reads only `reads` and sets only `writes` (BuildState field names);
    `purpose` is what the progress output shows while it runs."""

    name: str
    purpose: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable[[BuildState], None]


def order_errors(stages: Sequence[Stage], known: Sequence[str], state_fields: Sequence[str]) -> list[str]:
    """What is wrong with running `stages` in this order, when the fields in `known` are set at the start:
    a stage reading a field no earlier stage writes, or naming a field BuildState does not have."""
    errors = []
    available = set(known)
    for stage in stages:
        for name in (*stage.reads, *stage.writes):
            if name not in state_fields:
                errors.append(f"stage {stage.name} names {name}, which is not a BuildState field")
        for name in stage.reads:
            if name not in available:
                errors.append(f"stage {stage.name} reads {name} before any stage writes it")
        available.update(stage.writes)
    return errors


def field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]
