"""What `modelpack publish` created in the cloud, kept beside the build as publish.json.

Only what publish itself created is listed (a function or role that existed before is updated, never listed),
so `modelpack publish --delete` removes exactly that and nothing else. The record is written as each resource
is created, so a publish that fails half way still lists what it left behind. A rebuild carries the record
over into the new output folder (files/guard.py), because the resources outlive the build.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelpack.errors import UsageError
from modelpack.files.guard import PUBLISH_RECORD
from modelpack.files.jsonio import dumps_strict

KINDS = ("s3-object", "layer-version", "role", "role-policy", "inline-policy", "function", "function-version",
         "alias", "provisioned-concurrency", "function-url", "permission")
# Kinds that are a part of something publish may not have created (a version or alias of a function that existed
# before, an object in the user's bucket): without their detail a delete call would take the whole of it.
NEEDS_DETAIL = frozenset(KINDS) - {"role", "function"}


@dataclass(frozen=True)
class Resource:
    """One created resource: its kind, the name the delete call takes, and the detail that picks it out
    (a version number, a policy ARN or name, a qualifier, a statement id, an object key)."""

    kind: str
    name: str
    detail: str = ""

    def describe(self) -> str:
        what = {"s3-object": "S3 object", "layer-version": "layer version", "role": "IAM role",
                "role-policy": "policy attachment", "inline-policy": "inline policy", "function": "function",
                "function-version": "function version", "alias": "alias",
                "provisioned-concurrency": "provisioned concurrency on", "function-url": "function URL of",
                "permission": "resource policy statement"}[self.kind]
        return f"{what} {self.name}" + (f" {self.detail}" if self.detail else "")


@dataclass
class PublishRecord:
    target: str
    region: str
    function_name: str
    resources: list[Resource] = field(default_factory=list)

    def add(self, resource: Resource, dist: Path | None) -> None:
        if resource not in self.resources:
            self.resources.append(resource)
        if dist is not None:
            write(dist, self)

    def to_json(self) -> dict:
        return {"target": self.target, "region": self.region, "function_name": self.function_name,
                "resources": [asdict(r) for r in self.resources]}


def path_of(dist: Path) -> Path:
    return dist / PUBLISH_RECORD


def read(dist: Path) -> PublishRecord | None:
    path = path_of(dist)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        record = PublishRecord(doc["target"], doc["region"], doc["function_name"],
                               [Resource(r["kind"], r["name"], str(r.get("detail") or "")) for r in doc["resources"]
                                if r["kind"] in KINDS])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a publish record modelpack can read ({exc}); it lists what publish created, "
                         "so remove those resources by hand and delete the file.") from None
    partial = [r for r in record.resources if r.kind in NEEDS_DETAIL and not r.detail]
    if partial:
        raise UsageError(f"{path}: the {partial[0].kind} entry of {partial[0].name} has no detail (which version, "
                         "alias, key or statement publish created), and removing it without one would remove more "
                         "than publish created; nothing was removed. Remove those resources by hand and delete the "
                         "file.")
    return record


def start(dist: Path, target: str, region: str, function: str) -> PublishRecord:
    """The dist's record to add to: the one there (same region and function), or a new one."""
    record = read(dist)
    if record is None:
        return PublishRecord(target, region, function)
    if (record.region, record.function_name) != (region, function):
        raise UsageError(f"{path_of(dist)} records a publish of {record.function_name} in {record.region}; this dist "
                         f"was published there. Remove it first (modelpack publish {dist} --delete), or publish "
                         "another build's output to a second function.")
    return record


def write(dist: Path, record: PublishRecord) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".publish-", dir=dist)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps_strict(record.to_json(), indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path_of(dist))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
