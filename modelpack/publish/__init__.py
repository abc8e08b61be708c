"""`modelpack publish`: put a built dist into the cloud with the settings its build wrote.

One module per publish target, registered in TARGETS; each reads the dist (report.json and the files the
build wrote), never the recipe, so what is published is exactly what was built and measured.
"""

from __future__ import annotations

from modelpack.publish.base import PublishOptions, PublishResult
from modelpack.publish.registry import TARGETS, publish

__all__ = ["TARGETS", "PublishOptions", "PublishResult", "publish"]
