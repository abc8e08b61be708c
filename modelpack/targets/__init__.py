"""Build targets, registered by name."""

from __future__ import annotations

from modelpack.registry import Registry
from modelpack.targets.base import Artifact, Target, TargetSpecBase

TARGETS: Registry[type[Target]] = Registry("target kind")

__all__ = ["TARGETS", "Artifact", "Target", "TargetSpecBase"]
