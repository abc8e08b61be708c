"""The recipe's `targets[]` union, assembled from the registered targets."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from modelpack.targets import (
    TARGETS,
    catalog,  # noqa: F401  (registers every target)
)
from modelpack.targets.base import TargetSpecBase

_specs = tuple(t.Spec for t in TARGETS)
if _specs:
    TargetSpec = Annotated[_specs, Field(discriminator="kind")]  # type: ignore[valid-type]
else:

    class _NoTarget(TargetSpecBase):
        kind: Literal["(no target kinds are available)"]

    TargetSpec = _NoTarget  # type: ignore[misc]
