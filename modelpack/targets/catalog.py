"""Every build target, one registry line each."""

from __future__ import annotations

from modelpack.targets import TARGETS

for _target in ():
    TARGETS.register(_target)
