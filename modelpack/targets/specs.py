"""The recipe's `targets[]` union, assembled from the registered targets."""

from __future__ import annotations

import functools
import operator
from typing import Annotated

from pydantic import Field

from modelpack.targets import (
    TARGETS,
    catalog,  # noqa: F401  (registers every target)
)

_union = functools.reduce(operator.or_, [t.Spec for t in TARGETS])
TargetSpec = Annotated[_union, Field(discriminator="kind")]  # type: ignore[valid-type]
