"""Read a recipe file, validate it, and report every problem at once with file, line and field path."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from modelpack.errors import RecipeError
from modelpack.recipe.models import Recipe

Loc = tuple[Any, ...]
MAX_RECIPE_BYTES = 1_000_000
# Values (scalars, lists, mappings) after aliases are resolved; real recipes have a few hundred.
MAX_RECIPE_NODES = 20_000
# Fields that hold version numbers as text: YAML reads an unquoted `3.10` as the float 3.1, so these keep the
# characters the user wrote instead (`python: 3.10` is "3.10", never "3.1"); values of a `versions` mapping too.
VERSION_KEYS = frozenset({"python", "glibc"})
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:float", "tag:yaml.org,2002:int"})


def load_recipe(path: str | Path, *, check_files: bool = True) -> Recipe:
    """Parse and validate a recipe; raise RecipeError listing every problem."""
    path = Path(path)
    data, lines = read_yaml(path)
    try:
        return Recipe.model_validate(
            data, context={"base_dir": str(path.resolve().parent), "check_files": check_files}
        )
    except ValidationError as exc:
        problems = [format_problem(path, err, data, lines) for err in exc.errors()]
        problems = list(dict.fromkeys(problems))
        raise _recipe_error(path, problems) from None


def read_yaml(path: Path) -> tuple[dict, dict[Loc, int]]:
    """Load the YAML mapping and a map from field path to line number."""
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found. Check the path, or run `modelpack init` to write one.")
    raw = path.read_bytes()
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: {len(raw)} bytes is too large for a recipe (limit {MAX_RECIPE_BYTES}).")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}). Save the recipe as UTF-8.") from None
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        # Compose first: aliases are still shared nodes here, so their expanded size is checked before the
        # constructor turns them into copies (a few hundred bytes can otherwise expand to gigabytes).
        node = loader.get_single_node()
        _check_expansion(node, path)
        _versions_as_written(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{where}: malformed YAML: {what}. Fix the syntax at that line.") from None
    except RecursionError:
        raise RecipeError(f"{path}: the YAML is nested too deeply to be a recipe.") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise RecipeError(
            f"{path}: a recipe must be a YAML mapping with at least `name` and `model.path`, but this file is {kind}."
        )
    lines: dict[Loc, int] = {}
    problems: list[str] = []
    _walk(node, (), lines, problems, path)
    if problems:
        raise _recipe_error(path, problems)
    return data, lines


def _check_expansion(root: yaml.Node | None, path: Path) -> None:
    """Refuse a document whose aliases refer to themselves or expand past MAX_RECIPE_NODES nodes."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise RecipeError(
                f"{path}:{node.start_mark.line + 1}: malformed YAML: an alias refers to a node that contains it, "
                "so the recipe would be infinite. Write the value out instead of the alias."
            )
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_RECIPE_NODES:
                raise RecipeError(
                    f"{path}: the YAML expands to more than {MAX_RECIPE_NODES:,} values once its aliases (*name) "
                    "are resolved, far more than any recipe needs. Remove the repeated aliases."
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    if root is not None:
        size(root)


def _versions_as_written(root: yaml.Node | None) -> None:
    """Give unquoted numbers under VERSION_KEYS (and in `versions` mappings) the string tag, so they are read as
    the text written: the float 3.10 would otherwise become "3.1", a different Python."""
    seen: set[int] = set()
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            todo += node.value
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name in VERSION_KEYS:
                    _as_text(value)
                elif name == "versions" and isinstance(value, yaml.MappingNode):
                    for _, pinned in value.value:
                        _as_text(pinned)
                todo.append(value)


def _as_text(node: yaml.Node) -> None:
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.tag in _NUMBER_TAGS:
        node.tag = "tag:yaml.org,2002:str"


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[str], path: Path) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            if name in seen:
                problems.append(f"{path}:{key.start_mark.line + 1} {_dotted(loc + (name,))}: key is given twice")
            seen.add(name)
            lines[loc + (name,)] = key.start_mark.line + 1
            _walk(value, loc + (name,), lines, problems, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, loc + (i,), lines, problems, path)


def _recipe_error(path: Path, problems: list[str]) -> RecipeError:
    n = len(problems)
    head = f"Recipe {path} is invalid ({n} problem{'s' if n != 1 else ''}):"
    tail = f"Fix the field{'s' if n != 1 else ''} above and run `modelpack validate {path}` again."
    return RecipeError("\n".join([head, *(f"  {p}" for p in problems), tail]), problems=problems)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _clean_loc(loc: Loc, data: Any) -> Loc:
    """Drop the union tags pydantic puts into error locations, keeping the path the user wrote."""
    out: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(cur, dict):
            if part in cur or last:
                out.append(part)
                cur = cur.get(part)
            continue  # a union tag such as a target kind
        if isinstance(cur, list) and isinstance(part, int):
            out.append(part)
            cur = cur[part] if part < len(cur) else None
            continue
        break  # scalar reached: the rest names union members (int, float, ...)
    return tuple(out)


def _model_at(loc: Loc, data: Any) -> type[BaseModel] | None:
    """The pydantic model whose fields are allowed at `loc`, following the recipe's own data."""
    model: Any = Recipe
    cur = data
    for part in loc:
        if isinstance(part, int):
            cur = cur[part] if isinstance(cur, list) and part < len(cur) else None
            model = _pick(typing.get_args(model)[0] if typing.get_args(model) else model, cur)
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        cur = cur.get(part) if isinstance(cur, dict) else None
        model = _pick(model.model_fields[part].annotation, cur)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _pick(annotation: Any, value: Any) -> Any:
    """Unwrap Optional / Annotated / unions down to the member that fits `value`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is list:
        return annotation
    if origin is typing.Annotated:
        return _pick(args[0], value)
    if not args:
        return annotation
    for arg in args:
        arg = _pick(arg, value)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            kind = arg.model_fields.get("kind")
            if kind is None or not isinstance(value, dict):
                return arg
            if value.get("kind") in typing.get_args(kind.annotation):
                return arg
        elif typing.get_origin(arg) is list:
            return arg
    return args[0]


def format_problem(path: Path, err: dict, data: dict, lines: dict[Loc, int]) -> str:
    """One line: `file:line field.path: what is wrong and what is allowed`."""
    loc = _clean_loc(tuple(err["loc"]), data)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += ("kind",)
    line = _line_for(loc, lines)
    where = f"{path}:{line}" if line else str(path)
    return f"{where} {_dotted(loc)}: {_describe(err, loc, data)}"


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _describe(err: dict, loc: Loc, data: dict) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1], data)
        allowed = sorted(model.model_fields) if model else []
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        msg = f"unknown key '{loc[-1]}'"
        if hint:
            msg += f" (did you mean '{hint[0]}'?)"
        return msg + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    if kind == "missing":
        return "required field is missing"
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        return f"{_short(value)} is not one of {expected.replace(chr(39), '')}{_suggest(value, expected)}"
    if kind == "union_tag_invalid":
        tags = ctx.get("expected_tags", "")
        return (f"unknown kind {_short(ctx.get('tag'))}; known kinds: {tags.replace(chr(39), '')}"
                f"{_suggest(ctx.get('tag'), tags)}")
    if kind == "union_tag_not_found":
        return "missing `kind`; every target needs one"
    msg = err["msg"].removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error"):
        return msg
    return f"{msg[0].lower()}{msg[1:]} (got {_short(value)})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(value: Any, expected: str) -> str:
    """` (did you mean 'fastest'?)` when `value` is a near miss of one of the quoted choices in `expected`."""
    choices = re.findall(r"'([^']*)'", expected)
    hint = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.75) if isinstance(value, str) else []
    return f" (did you mean '{hint[0]}'?)" if hint else ""
