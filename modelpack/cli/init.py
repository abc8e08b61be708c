"""`modelpack init [DIR] [--model M] [--data D]`: a recipe for the user's own model, from what it holds.

The model is inspected in a worker process (no TensorFlow here), the data's arrays are matched to its inputs
and labels, the task is read from the labels, and the recipe is checked as `validate` checks it before it is
written, so what init writes builds as written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import examples
from modelpack.errors import UsageError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
IGNORED = ("dist/",)  # what a build writes in the folder it runs in (dist/<name>/)


def _one(found: list[Path], what: str, option: str, directory: Path) -> Path | None:
    if len(found) > 1:
        names = ", ".join(p.name for p in sorted(found))
        raise UsageError(f"{directory} holds several {what} ({names}); pick one with {option} PATH.")
    return found[0] if found else None


def find_model(directory: Path) -> Path | None:
    found = [p for p in directory.iterdir() if (p.is_file() and p.suffix in MODEL_SUFFIXES)
             or (p.is_dir() and (p / "saved_model.pb").is_file())] if directory.is_dir() else []
    return _one(found, "models", "--model", directory)


def find_data(directory: Path) -> Path | None:
    found = [p for p in directory.glob("*.npz") if p.is_file()] if directory.is_dir() else []
    return _one(found, ".npz files", "--data", directory)


def recipe_name(directory: Path) -> str:
    """The folder's name as a build name (letters, digits, - and _: also a valid Lambda layer name)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", directory.resolve().name).strip("-_")
    return name[:64] or "model"


def _relative(path: Path, directory: Path) -> str:
    return Path(os.path.relpath(path.resolve(), directory.resolve())).as_posix()


def _spec(t: dict) -> str:
    return f"{t['name']} {t['dtype']} [" + ", ".join("None" if d is None else str(d) for d in t["shape"]) + "]"


def draft_for(directory: Path, model: Path | None, data: Path | None, trust_code: bool):
    """The Draft of the recipe, and the lines that tell the user what was found."""
    from modelpack.cli.inspect import inspect
    from modelpack.host.interpreters import host_arch, host_python
    from modelpack.inputs.data_guess import choose_arrays, load_npz
    from modelpack.inputs.task import infer_task, scored_output
    from modelpack.recipe.starter import Draft

    arch = host_arch() if host_arch() in ("x86_64", "arm64") else "x86_64"
    name = recipe_name(directory)
    if model is None:
        return (Draft(name, "model.keras", host_python(), arch, found_model=False),
                [f"model: none found in {directory} (.keras, .h5 or a SavedModel folder); the recipe names "
                 "model.keras: save your model there, or run init again with --model PATH"])
    info = inspect(model, trust_code, cuts=False)["model"]
    inputs, outputs = info["inputs"], info["outputs"]
    lines = [f"model: {model} ({len(inputs)} input(s), {len(outputs)} output(s), {info['params']:,} parameters)"]
    fields: dict = {"model_lines": tuple([f"input  {_spec(t)}" for t in inputs] + [f"output {_spec(t)}" for t in outputs]),
                    "trust_code": trust_code, "task_output": outputs[0]["name"] if len(outputs) > 1 else None}
    if data is not None:
        origin = str(data)
        choice = choose_arrays(load_npz(data), inputs, origin)
        fields.update(data_path=_relative(data, directory), inputs=tuple(choice.inputs), labels=choice.labels,
                      input_names=tuple(t["name"] for t in inputs), samples=choice.samples, notes=tuple(choice.notes))
        lines.append(f"data: {data}: {', '.join(choice.inputs)} → the model's inputs; labels: "
                     f"{choice.labels or 'none'} ({choice.samples} samples)")
        if choice.labels:
            labels = load_npz(data)[choice.labels]
            guess = infer_task(labels, outputs[scored_output(None, outputs, origin)], choice.labels, origin)
            fields.update(task=guess.task, task_reason=guess.reason)
            lines.append(f"task: {guess.task}, because {guess.reason}")
    else:
        lines.append(f"data: no .npz in {directory}; random inputs measure speed and size only (pass --data for "
                     "accuracy)")
    lines += [f"CHECK: {note}" for note in fields.get("notes", ())]
    return Draft(name, _relative(model, directory), host_python(), arch, **fields), lines


def schema_is_ours(path: Path) -> bool:
    """Whether init may write `path`: absent, or a recipe schema modelpack wrote (this version's or another's)."""
    from modelpack.recipe.schema import SCHEMA_ID

    if not path.exists() and not path.is_symlink():
        return True
    try:
        return path.is_file() and not path.is_symlink() and json.loads(path.read_text()).get("$id") == SCHEMA_ID
    except (OSError, ValueError, AttributeError):
        return False


def write_gitignore(directory: Path) -> str:
    """Create .gitignore, or append the lines it lacks (never rewriting what is there); say which."""
    path = directory / ".gitignore"
    header = "# modelpack: `modelpack build` writes dist/<name>/ in the folder it runs in\n"
    if not path.exists():
        path.write_text(header + "".join(f"{line}\n" for line in IGNORED))
        return f".gitignore: written ({', '.join(IGNORED)})"
    text = path.read_text(errors="replace")
    have = {line.strip().lstrip("/") for line in text.splitlines()}
    missing = [line for line in IGNORED if line not in have and line.rstrip("/") not in have]
    if not missing:
        return ".gitignore: already ignores " + ", ".join(IGNORED)
    with open(path, "a") as f:
        f.write(("" if text.endswith("\n") or not text else "\n") + header + "".join(f"{m}\n" for m in missing))
    return f".gitignore: added {', '.join(missing)} at its end (the rest is as it was)"


@click.command(epilog=examples(
    "modelpack init                                   # the model and .npz in this folder",
    "modelpack init my-model --model my-model/model.keras --data my-model/data.npz",
    "modelpack init . --force                         # write recipe.yaml again"))
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", type=click.Path(exists=True, path_type=Path),
              help="The trained model (.keras, .h5 or a SavedModel folder) [the one in DIRECTORY].")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A .npz of sample inputs and labels [the one in DIRECTORY; none: random inputs].")
@click.option("--trust-code", is_flag=True, help="The model has Lambda layers or custom objects; let their code run.")
@click.option("--force", is_flag=True, help="Overwrite an existing recipe.yaml (and a recipe.schema.json modelpack did "
              "not write).")
@handle_errors
def init(directory: Path, model: Path | None, data: Path | None, trust_code: bool, force: bool) -> None:
    """Write a recipe.yaml for the model in DIRECTORY, filled from the model and its data.

    Inspects the model (inputs, outputs) and the .npz beside it (which arrays feed which input, which hold the
    labels), infers the task from the labels and says why, and targets a Lambda layer and function for this
    machine's Python, so the recipe builds as written and invoke and serve run the result here. Also writes
    recipe.schema.json (editor completion) and a .gitignore for the build output.
    """
    from modelpack.inputs import precheck
    from modelpack.recipe.loader import load_recipe
    from modelpack.recipe.schema import schema_text
    from modelpack.recipe.starter import render

    dest, schema = directory / "recipe.yaml", directory / "recipe.schema.json"
    if dest.exists() and not force:
        raise UsageError(f"{dest} exists already; pass --force to overwrite it.")
    if not force and not schema_is_ours(schema):
        raise UsageError(f"{schema} exists and modelpack did not write it (it is not the recipe schema init "
                         "writes); move it away, or pass --force to overwrite it.")
    directory.mkdir(parents=True, exist_ok=True)
    model = model or find_model(directory)
    data = data or (find_data(directory) if model is not None else None)
    draft, found = draft_for(directory, model, data, trust_code)
    text = render(draft)
    fd, name = tempfile.mkstemp(prefix=".recipe-init-", suffix=".yaml", dir=directory)  # never a file of the user's
    trial = Path(name)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        if model is not None:  # what validate checks, so what init writes is what a build accepts
            recipe = load_recipe(trial)
            precheck.check_model(recipe, str(dest))
            precheck.check_data(recipe, str(dest), call_functions=False)
        schema.write_text(schema_text())
        os.replace(trial, dest)
    finally:
        trial.unlink(missing_ok=True)
    for line in [f"wrote {dest} and recipe.schema.json (name: {draft.name})", *found, write_gitignore(directory)]:
        click.echo(line)
    here = "" if directory.resolve() == Path.cwd().resolve() else f"cd {directory} && "
    click.echo(f"next: {here}modelpack build recipe.yaml" if model is not None else
               f"next: save the model, then {here}modelpack validate recipe.yaml")
