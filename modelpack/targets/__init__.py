"""Targets: what a build writes for each platform, one module per recipe `kind` (Lambda layer, function and
split functions, Azure Functions, images), registered by name in `catalog.py` and built in order against a
`context.BuildContext`. Beside them: the handler files every function carries (`handler_files`), the checks that
run a built handler as the platform would (`handler_check`), the SAM template (`sam`, `sam_endpoint`,
`monitoring`), runtimes and their slimmed site-packages, Lambda's limits, and the sample requests (`events`)."""

from __future__ import annotations

from modelpack.registry import Registry
from modelpack.targets.base import Artifact, Target, TargetSpecBase

TARGETS: Registry[type[Target]] = Registry("target kind")

__all__ = ["TARGETS", "Artifact", "Target", "TargetSpecBase"]
