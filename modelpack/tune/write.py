"""`--write`: set the lambda-function target's fields in the recipe, leaving every other byte as it was.

The recipe is composed (not loaded) with PyYAML, which gives each node's position in the text; values are
replaced where they stand and missing keys are added next to `kind: lambda-function`, in the mapping's own
style (block or flow), so comments, order and quoting elsewhere survive.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from modelpack.errors import UsageError
from modelpack.recipe.targets import LambdaFunctionSpec

KIND = "lambda-function"


def scalar(value: int | str | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else json.dumps(value)


def _target(root: yaml.Node, path: Path) -> yaml.MappingNode:
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "targets" and isinstance(value, yaml.SequenceNode):
                for item in value.value:
                    if isinstance(item, yaml.MappingNode) and any(
                            k.value == "kind" and getattr(v, "value", None) == KIND for k, v in item.value):
                        return item
    raise UsageError(f"{path}: no `targets` entry with `kind: {KIND}`; add one (see docs/aws-lambda.md) "
                     "or pass the recipe the build used.")


def _shared_spans(text: str) -> tuple[list[tuple[int, int]], list[int]]:
    """Where the text has anchored values (&name: their spans) and aliases (*name: their positions)."""
    anchored, aliases, open_ = [], [], []
    for event in yaml.parse(text):
        if isinstance(event, yaml.AliasEvent):
            aliases.append(event.start_mark.index)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            open_.append(event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            start = open_.pop()
            if start.anchor:
                anchored.append((start.start_mark.index, event.end_mark.index))
        elif isinstance(event, yaml.ScalarEvent) and event.anchor:
            anchored.append((event.start_mark.index, event.end_mark.index))
    return anchored, aliases


def _refuse_shared(text: str, root: yaml.Node, target: yaml.MappingNode, changes: dict, path: Path) -> None:
    """An edit in place would also change every other use of an anchored value, and cannot reach a value that
    comes through an alias: refuse, and say what to set by hand."""
    anchored, aliases = _shared_spans(text)
    targets = next(v for k, v in root.value if k.value == "targets")
    lo, hi = target.start_mark.index, target.end_mark.index
    shared = any(a < hi and lo < b for a, b in anchored) or any(
        targets.start_mark.index <= at <= targets.end_mark.index for at in aliases)
    if shared:
        wanted = ", ".join(f"{k}: {scalar(v)}" for k, v in changes.items())
        raise UsageError(f"{path}: the {KIND} target uses YAML anchors or aliases (&name / *name), so editing it in "
                         f"place would change other places that share its values, or miss values that come from "
                         f"elsewhere. Nothing was written; set {wanted} in the recipe by hand.")


def edit(text: str, changes: dict[str, int | str | None], path: Path) -> str:
    """The recipe text with `changes` applied to its lambda-function target, in the text's own line endings."""
    try:
        root = yaml.compose(text)
        target = _target(root, path)
        _refuse_shared(text, root, target, changes, path)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc}).") from None
    newline = "\r\n" if "\r\n" in text else "\n"
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    missing = []
    pairs = {k.value: v for k, v in target.value}
    for key, value in changes.items():
        node = pairs.get(key)
        if node is None:
            missing.append(f"{key}: {scalar(value)}")
        elif not isinstance(node, yaml.ScalarNode):
            raise UsageError(f"{path}: targets[{KIND}].{key} is not a plain value; set it by hand to {scalar(value)}.")
        else:
            edits.append((node.start_mark.index, node.end_mark.index, scalar(value)))
    if missing:
        kind_key, kind_value = next((k, v) for k, v in target.value if k.value == "kind")
        if target.flow_style:
            last = target.value[-1][1].end_mark.index
            edits.append((last, last, "".join(f", {m}" for m in missing)))
        else:
            eol = text.find(newline, kind_value.end_mark.index)
            eol = len(text) if eol < 0 else eol
            indent = " " * kind_key.start_mark.column
            edits.append((eol, eol, "".join(f"{newline}{indent}{m}" for m in missing)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


@dataclass(frozen=True)
class Change:
    """One field `--write` set: its new value and what the recipe said before (its default when absent)."""

    value: int | str | None
    was: int | str | None


def write_recipe(path: Path, changes: dict[str, int | str | None], build_name: str) -> dict[str, Change]:
    """Apply `changes` to the recipe at `path` (atomically, same mode, same line endings; through a symbolic
    link, the file it points to); returns those it had to make."""
    real = path.resolve()
    try:
        text = real.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the recipe ({exc}).") from None
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, RecursionError) as exc:
        raise UsageError(f"{path}: not valid YAML ({str(exc)[:200]}).") from None
    if not isinstance(data, dict) or data.get("name") != build_name:
        raise UsageError(f"{path}: this recipe is not the one the build '{build_name}' came from (its name is "
                         f"{data.get('name') if isinstance(data, dict) else None!r}); pass that build's recipe with --recipe.")
    current = next((t for t in data.get("targets") or [] if isinstance(t, dict) and t.get("kind") == KIND), None)
    if current is None:
        _target(yaml.compose(text), path)  # raises the message that names the missing target
    fields = LambdaFunctionSpec.model_fields
    changes = {k: v for k, v in changes.items() if current.get(k, fields[k].default) != v}
    if not changes:
        return {}
    made = {k: Change(v, current.get(k, fields[k].default)) for k, v in changes.items()}
    new = edit(text, changes, path)
    target = next(t for t in yaml.safe_load(new)["targets"] if isinstance(t, dict) and t.get("kind") == KIND)
    try:
        LambdaFunctionSpec.model_validate(target)
    except ValidationError as exc:  # a recommendation outside the field's range is a bug, not the user's
        raise RuntimeError(f"the edited target does not validate: {exc}") from exc
    for key, value in changes.items():
        if target.get(key) != value:
            raise RuntimeError(f"editing {path} did not set {key} (found {target.get(key)!r})")
    fd, tmp = tempfile.mkstemp(prefix=".modelpack-tune-", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(new.encode("utf-8"))
        os.chmod(tmp, real.stat().st_mode & 0o777)
        os.replace(tmp, real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return made
