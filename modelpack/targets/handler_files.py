"""The files every generated handler carries: shared serving code, its config, and the model."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

from modelpack.errors import TargetError
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import sha256_file

IMAGE_FILE = "images.py"  # only in packages built for image requests, beside Pillow
PILLOW = "pillow"


def template_dir(name: str) -> Path:
    """A folder of modelpack/serving/, shipped inside the installed package."""
    return Path(str(resources.files("modelpack.serving") / name))


def common_files() -> list[str]:
    """The shared serving modules every handler carries: every module of serving/common but the image decoder."""
    return sorted(p.name for p in template_dir("common").glob("*.py") if p.name != IMAGE_FILE)


def copy_code(dest: Path, entry: tuple[str, str], image: bool = False) -> None:
    """The entry template (handler or app) and the shared serving code."""
    dest.mkdir(parents=True, exist_ok=True)
    folder, filename = entry
    shutil.copyfile(template_dir(folder) / filename, dest / filename)
    for name in common_files():
        shutil.copyfile(template_dir("common") / name, dest / name)
    if image:
        shutil.copyfile(template_dir("common") / IMAGE_FILE, dest / IMAGE_FILE)


def write_config(ctx: Any, dest: Path, model: dict, options: dict, **overrides) -> dict:
    config = {
        "name": ctx.recipe.name,
        "variant": ctx.report.selected,
        "model": model,
        "inputs": served_inputs(ctx.info),
        "outputs": ctx.info["outputs"],
        "task": ctx.recipe.task,
        "task_output": ctx.recipe.task_output or ctx.info["outputs"][0]["name"],
        "threads": 1,
        "image": image_config(ctx),
        **options,
        **overrides,
    }
    (dest / "modelpack.json").write_text(dumps_strict(config, indent=1, sort_keys=True) + "\n")
    return config


def served_inputs(info: dict) -> list[dict]:
    """The model's input specs for a handler config; an input that feeds an Embedding layer carries its
    `vocabulary` (rows), so the handler refuses ids outside [0, vocabulary) as the client's error."""
    vocabularies = info.get("vocabularies") or {}
    return [{**spec, "vocabulary": vocabularies[spec["name"]]} if spec["name"] in vocabularies else spec
            for spec in info["inputs"]]


def image_config(ctx: Any) -> dict | None:
    """recipe serving.image for the handler config, checked against the model's single image input."""
    image = ctx.recipe.serving.image
    if image is None:
        return None
    inputs = ctx.info["inputs"]
    shape = inputs[0]["shape"] if len(inputs) == 1 else []
    channels = 1 if image.channels == "grayscale" else 3
    nhwc, nchw = [image.size[0], image.size[1], channels], [channels, image.size[0], image.size[1]]
    if len(shape) != 4 or [d if d is not None else w for d, w in zip(shape[1:], nhwc)] != nhwc and \
            [d if d is not None else w for d, w in zip(shape[1:], nchw)] != nchw:
        raise TargetError(f"serving.image: the model's input is {[i['shape'] for i in inputs]}, but images of "
                          f"size {list(image.size)} with {channels} channel(s) give [batch, {image.size[0]}, "
                          f"{image.size[1]}, {channels}]; set serving.image.size and channels to the model's input, "
                          "or remove serving.image.")
    return image.model_dump(mode="json")


def write(ctx: Any, dest: Path, entry: tuple[str, str], *, model_in_layer: bool, options: dict,
          source: str | None = None, model: Path | None = None, **overrides) -> dict:
    """Copy the entry template and the common files into `dest`, write modelpack.json and (unless it lives in a
    layer or is downloaded from `source` at cold start) the model; return the config.

    `model` defaults to the selected variant; `overrides` replace config entries (inputs, outputs, task...)."""
    copy_code(dest, entry, image=ctx.recipe.serving.image is not None)
    model = model or ctx.selected_file
    model_rel = f"model/model{model.suffix}"
    if not model_in_layer and source is None:
        (dest / "model").mkdir(exist_ok=True)
        shutil.copyfile(model, dest / model_rel)
    entry_model = {"path": model_rel, "sha256": sha256_file(model), "in_layer": model_in_layer}
    if source is not None:
        entry_model.update(source=source, bytes=model.stat().st_size)
    return write_config(ctx, dest, entry_model, options, **overrides)


_PYCACHE = r"""
import importlib.util, py_compile, sys
root = sys.argv[1]
for rel in sys.argv[2:]:
    source = root + "/" + rel
    py_compile.compile(source, cfile=importlib.util.cache_from_source(source), dfile=rel, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
"""


def ship_bytecode(dest: Path, interpreter: str | None, ctx: Any = None) -> int:
    """Compile the handler's own modules into __pycache__ with a Python of the package's version; returns how
    many (0 without such a Python). With a build context the compiled files come through the build cache.

    Lambda's /var/task and a run-from-package Azure app are read-only, so Python would recompile the handler
    at every cold start (about 14 ms for these modules on the benchmark machine). Checked-hash .pyc hold the
    hash of their source instead of its timestamp, so they are used whatever the zip's timestamps, and a
    source someone edits in the package is compiled again rather than silently ignored.
    """
    if interpreter is None:
        return 0
    sources = sorted(p.name for p in dest.glob("*.py"))
    if ctx is None:
        _compile(dest, interpreter, sources)
    else:
        from modelpack.files.cache import cache_key

        try:  # the interpreter's binary stands for its exact version (an upgrade changes the bytecode)
            binary = Path(shutil.which(interpreter) or interpreter).resolve().stat()
            stamp = (binary.st_size, binary.st_mtime_ns)
        except OSError:
            stamp = None
        key = cache_key("handler-bytecode", "checked-hash", [(n, sha256_file(dest / n)) for n in sources],
                        interpreter, stamp)

        def make(into: Path) -> dict:
            for name in sources:
                shutil.copyfile(dest / name, into / name)
            _compile(into, interpreter, sources)
            for name in sources:
                (into / name).unlink()
            return {"modules": sources}

        shutil.copytree(ctx.cached_tree(key, make) / "__pycache__", dest / "__pycache__", dirs_exist_ok=True)
    return len(sources)


def _compile(root: Path, interpreter: str, sources: list[str]) -> None:
    proc = subprocess.run([interpreter, "-S", "-c", _PYCACHE, str(root), *sources], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TargetError(f"compiling the handler's modules with {interpreter} failed: "
                          f"{(proc.stderr.strip().splitlines() or ['no output'])[-1][:300]}")
