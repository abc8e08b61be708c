"""`--write`: set the lambda-function target's fields in the recipe, leaving every other byte as it was.

The recipe is composed (not loaded) with PyYAML, which gives each node's position in the text; values are
replaced where they stand and missing keys are added next to `kind: lambda-function`, in the mapping's own
style (block or flow), so comments, order and quoting elsewhere survive.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml
from pydantic import ValidationError

from modelpack.errors import UsageError
from modelpack.recipe.targets import LambdaFunctionSpec

KIND = "lambda-function"


def scalar(value: int | str | None) -> str:
    if value is None:
        return "null"
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


def edit(text: str, changes: dict[str, int | str | None], path: Path) -> str:
    """The recipe text with `changes` applied to its lambda-function target."""
    try:
        target = _target(yaml.compose(text), path)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc}).") from None
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
            eol = text.find("\n", kind_value.end_mark.index)
            eol = len(text) if eol < 0 else eol
            indent = " " * kind_key.start_mark.column
            edits.append((eol, eol, "".join(f"\n{indent}{m}" for m in missing)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def write_recipe(path: Path, changes: dict[str, int | str | None], build_name: str) -> dict[str, int | str | None]:
    """Apply `changes` to the recipe at `path` (atomically, same mode); returns those it had to make."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the recipe ({exc}).") from None
    data = yaml.safe_load(text) if text.strip() else None
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
    new = edit(text, changes, path)
    target = next(t for t in yaml.safe_load(new)["targets"] if isinstance(t, dict) and t.get("kind") == KIND)
    try:
        LambdaFunctionSpec.model_validate(target)
    except ValidationError as exc:  # a recommendation outside the field's range is a bug, not the user's
        raise RuntimeError(f"the edited target does not validate: {exc}") from exc
    for key, value in changes.items():
        if target.get(key) != value:
            raise RuntimeError(f"editing {path} did not set {key} (found {target.get(key)!r})")
    fd, tmp = tempfile.mkstemp(prefix=".modelpack-tune-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return changes
