"""The recipe `modelpack init` writes: what it found in the model and data, as commented YAML that builds as
written (every target it enables builds here; the commented ones validate when uncommented)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

from modelpack import limits
from modelpack.recipe.models import DEFAULT_VARIANTS

AZURE_DEFAULT, IMAGE_DEFAULT, LAMBDA_DEFAULT = "3.11", "3.12", "3.12"
LAMBDA_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
IMAGE_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
_PLAIN = re.compile(r"[A-Za-z0-9_./-]+")


@dataclass(frozen=True)
class Draft:
    """Everything the starter recipe says; `model_path` and `data_path` relative to the recipe's folder."""

    name: str
    model_path: str
    python: str  # this machine's, so the package runs here under invoke and serve
    arch: str
    model_lines: tuple[str, ...] = ()  # "input image float32 [None, 8, 8, 1]", ...
    trust_code: bool = False
    data_path: str | None = None
    inputs: tuple[str, ...] = ()
    input_names: tuple[str, ...] = ()
    labels: str | None = None
    samples: int | None = None
    task: str | None = None
    task_reason: str | None = None
    task_output: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    found_model: bool = True


def scalar(value: str) -> str:
    """A YAML scalar for `value`: plain when YAML reads it back as the same string (not `yes`, `on`, `1e3`,
    `1_000`, `2024-01-01`, `a: b` ...), else double-quoted (a JSON string is a YAML double-quoted scalar, on one
    line whatever it holds)."""
    try:
        if _PLAIN.fullmatch(value) and yaml.safe_load(f"k: {value}") == {"k": value}:
            return value
    except yaml.YAMLError:  # "-" alone, say: not a plain scalar at all
        pass
    return json.dumps(value)


def _flow(values: tuple[str, ...]) -> str:
    """One name as a scalar, several as a flow sequence of scalars."""
    return scalar(values[0]) if len(values) == 1 else "[" + ", ".join(map(scalar, values)) + "]"


def _pick(version: str, allowed: tuple[str, ...], default: str) -> str:
    return version if version in allowed else default


def _line(text: str) -> str:
    """Text for a comment: a name holding a line break would end the comment and break the YAML."""
    return " ".join(text.splitlines())


def _comment(key_value: str, comment: str, width: int = 30) -> str:
    return f"{key_value.ljust(width - 1)} # {_line(comment)}" if comment else key_value


def render(d: Draft) -> str:
    lambda_py = _pick(d.python, LAMBDA_PYTHONS, LAMBDA_DEFAULT)
    azure_py = _pick(d.python, limits.AZURE_PYTHONS, AZURE_DEFAULT)
    image_py = _pick(d.python, IMAGE_PYTHONS, IMAGE_DEFAULT)
    source = d.model_path + (f" and {d.data_path}" if d.data_path else "")
    out = ["# yaml-language-server: $schema=recipe.schema.json",
           f"# modelpack recipe written by `modelpack init` from {_line(source)}.",
           "# Check it with `modelpack validate recipe.yaml`, build it with `modelpack build recipe.yaml`; paths are",
           "# relative to this file, and `modelpack schema --markdown` lists every field."]
    out += [f"# CHECK: {_line(note)}" for note in d.notes]
    out += [f"name: {scalar(d.name)}", "model:",
            _comment(f"  path: {scalar(d.model_path)}", "" if d.found_model else "save your model here")]
    if d.trust_code:
        out.append(_comment("  trust_code: true", "the model has Lambda layers or custom objects; their code runs"))
    out += [f"  # {_line(line)}" for line in d.model_lines]
    if d.data_path is None:
        out += ["data:", _comment("  synthetic: true", "no .npz found: random inputs, so no accuracy is measured"),
                "  # path: data.npz            # arrays named for the inputs (x) and the labels (y)"]
    else:
        inputs = _flow(d.inputs)
        fed = ", ".join(f"{a} → {i}" for a, i in zip(d.inputs, d.input_names))
        out += ["data:", f"  path: {scalar(d.data_path)}",
                _comment(f"  inputs: {inputs}", f"fed to the model's inputs in order: {fed}"),
                _comment(f"  labels: {scalar(d.labels) if d.labels else 'null'}",
                         f"{d.samples} samples" if d.labels else "no labels found: no accuracy is measured")]
    if d.task:
        out.append(_comment(f"task: {d.task}", f"{d.task_reason}"))
    if d.task_output:
        out.append(_comment(f"task_output: {scalar(d.task_output)}", "the output the task scores; see the outputs above"))
    out += ["optimize:", _comment(f"  variants: [{', '.join(DEFAULT_VARIANTS)}]", "drop the ones you do not need", 0)]
    if d.task == "classification":
        out += ["budgets:", _comment("  max_accuracy_drop: 0.01", "a variant may lose at most 1 point of accuracy")]
    elif d.task == "regression":
        out += ["# budgets:                    # for regression, max_accuracy_drop is in the labels' units:",
                "#   max_accuracy_drop: 0.1     # how much the mean absolute error may grow against the Keras model"]
    out += [_comment("select: fastest", "smallest | fastest | coldest-start | most-accurate"),
            "targets:",
            _comment(f"  - {{kind: lambda-layer, python: \"{lambda_py}\", arch: {d.arch}}}",
                     "runtime layer; this machine's Python, so invoke and serve run it here", 56),
            _comment("  - {kind: lambda-function, memory_mb: 1024}",
                     "handler and SAM template (memory_mb: auto needs measure.memory)", 56),
            _comment(f"  # - {{kind: azure-functions, python: \"{azure_py}\"}}", "uncomment for an Azure Functions app",
                     56),
            _comment(f"  # - {{kind: lambda-image, python: \"{image_py}\"}}", "a container image for Lambda", 56),
            _comment(f"  # - {{kind: azure-image, python: \"{image_py}\"}}", "a container image for Azure", 56)]
    return "\n".join(out) + "\n"
