"""The recipe's JSON Schema, generated from the pydantic models."""

from __future__ import annotations

import json

from modelpack.recipe.models import Recipe

SCHEMA_ID = "urn:modelpack:recipe"  # stable name; editors find the file by the path on the recipe's first line


def schema_text() -> str:
    schema = Recipe.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "modelpack recipe"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _type_name(annotation) -> str:
    import typing

    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if args:
        return " or ".join(_type_name(a) for a in args)
    return getattr(annotation, "__name__", str(annotation))


def reference_markdown() -> str:
    """A table of every recipe field: path, type, default, description (kept in docs/recipe.md by a test)."""
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    from modelpack.recipe.targets import TARGET_SPECS

    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            path = f"{prefix}{name}"
            sub = _submodel(f.annotation)
            if f.is_required():
                default = "required"
            elif f.default_factory is not None:
                default = "see below" if sub else f"`{f.default_factory()}`"
            else:
                default = "–" if f.default in (None, PydanticUndefined) else f"`{f.default}`"
            shown = "mapping" if sub else _type_name(f.annotation)
            if name == "targets" and not prefix:
                shown = "list of target mappings"
            rows.append(f"| `{path}` | {shown} | {default} | {f.description or ''} |")
            if sub and not (name == "targets" and not prefix):
                walk(sub, f"{path}.")

    def _submodel(annotation):
        import typing

        for a in (annotation, *typing.get_args(annotation)):
            if isinstance(a, type) and issubclass(a, BaseModel):
                return a
        return None

    walk(Recipe, "")
    for kind, spec in TARGET_SPECS.items():
        walk(spec, f"targets[] ({kind}).")
    return "\n".join(rows) + "\n"
