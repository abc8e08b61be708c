"""`kind: lambda-layer`: the inference runtime and numpy for the target Lambda runtime, slimmed and verified."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from modelpack import interpreters, limits
from modelpack.cache import cache_key
from modelpack.errors import TargetError
from modelpack.output import tree_bytes, write_zip
from modelpack.targets import lambda_limits, sitepackages
from modelpack.targets.base import Artifact, Target, TargetSpecBase
from modelpack.targets.runtimes import FORMAT_RUNTIME, RUNTIMES

if TYPE_CHECKING:
    from modelpack.pipeline import BuildContext

PythonVersion = Literal["3.10", "3.11", "3.12", "3.13", "3.14"]


class LambdaLayerSpec(TargetSpecBase):
    """A Lambda layer zip with the runtime under python/ (and optionally the model under model/)."""

    kind: Literal["lambda-layer"]
    python: PythonVersion = Field("3.12", description="Lambda Python runtime the layer is built for.")
    arch: Literal["x86_64", "arm64"] = Field("x86_64", description="Lambda architecture.")
    runtime: Literal["onnxruntime", "litert"] | None = Field(
        None, description="Inference runtime; default: the one the selected variant's format needs."
    )
    versions: dict[str, str] = Field(default_factory=dict, description="Pinned versions, e.g. {onnxruntime: 1.16.3}.")
    model_in: Literal["layer", "function"] = Field("function", description="Ship the model in the layer or the function.")
    interpreter: str | None = Field(
        None, description="Python of the target version, for bytecode and verification; default: found on PATH/pyenv."
    )

    def identity(self) -> str:
        return f"lambda-layer({self.python}, {self.arch})"


def _bookkeeping(root: Path):
    """copytree filter dropping the cache's own files at the top of a cached tree."""
    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n in ("modelpack-tree.json", "entry.json")] if Path(directory) == root else []

    return ignore


class LambdaLayerTarget(Target):
    NAME = "lambda-layer"
    PURPOSE = "Lambda layer zip: runtime wheels for the target platform, slimmed, bytecode shipped, verified."
    Spec = LambdaLayerSpec

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        spec: LambdaLayerSpec = self.spec  # type: ignore[assignment]
        model = ctx.selected_file
        if model is None:
            raise TargetError(f"{spec.identity()}: no variant was selected, so there is no model to package.")
        runtime = RUNTIMES[spec.runtime or FORMAT_RUNTIME[ctx.report.variant(ctx.report.selected)["format"]]]
        if model.suffix != runtime.model_suffix:
            raise TargetError(f"{spec.identity()}: runtime {runtime.name} cannot run the selected {model.suffix} model; "
                              "drop `runtime` or select a matching variant.")
        os_name, glibc = limits.LAMBDA_RUNTIMES[spec.python]
        interpreter = interpreters.find(spec.python, spec.interpreter)
        can_run = interpreter is not None and spec.arch == interpreters.host_arch()

        key = cache_key("lambda-layer-site", runtime.packages, spec.python, spec.arch, sorted(spec.versions.items()),
                        ctx.versions_key, bool(can_run))
        tree = ctx.cached_tree(key, lambda dest: self._site_packages(dest, runtime, spec, glibc, os_name,
                                                                       interpreter if can_run else None, model, ctx))
        info = dict(ctx.read_tree_info(tree))
        if info.get("note"):
            ctx.report.notes.append(f"{spec.identity()}: {info['note']}")

        layer = ctx.work / "lambda-layer"
        shutil.rmtree(layer, ignore_errors=True)
        shutil.copytree(tree, layer / "python", ignore=_bookkeeping(tree))
        if spec.model_in == "layer":
            (layer / "model").mkdir()
            shutil.copyfile(model, layer / "model" / f"model{model.suffix}")
        unzipped = tree_bytes(layer)
        zip_path = write_zip(layer, out_dir / "lambda" / "layer.zip")
        zipped = zip_path.stat().st_size
        errors, warnings = lambda_limits.check(unzipped, {"layer.zip": zipped}, layers=1)
        if errors:
            raise TargetError(f"{spec.identity()}: {errors[0]}.")
        ctx.report.notes += [f"{spec.identity()}: {w}." for w in warnings]
        info.update(python=spec.python, arch=spec.arch, runtime=runtime.name, os=os_name, model_in=spec.model_in,
                    zipped_bytes=zipped, compatible_runtime=f"python{spec.python}")
        ctx.built["lambda-layer"] = {"dir": layer, "spec": spec, "runtime": runtime, "interpreter": interpreter,
                                     "can_run": can_run, "unzipped_bytes": unzipped, "info": info}
        return [Artifact(self.NAME, "lambda/layer.zip", unzipped, info)]

    def _site_packages(self, dest: Path, runtime, spec: LambdaLayerSpec, glibc, os_name: str,
                       interpreter: str | None, model: Path, ctx: BuildContext) -> dict:
        installed = sitepackages.install(runtime, spec.python, spec.arch, glibc, spec.versions, dest, os_name)
        naive = tree_bytes(dest)
        removed = sitepackages.slim(dest, runtime)
        info: dict = {"installed": installed, "naive_unzipped_bytes": naive, "removed": len(removed)}
        if interpreter is None:
            why = ("the build machine is not " + spec.arch) if spec.arch != interpreters.host_arch() else \
                f"no Python {spec.python} was found (set `interpreter`)"
            info.update(verified=False, bytecode=0, note=(
                f"not verified and shipped as sources only: {why}. Without .pyc files every cold start recompiles "
                "the runtime's modules (measured on these machines: import numpy+onnxruntime 174 ms vs 67 ms)."))
            return info
        inputs = ctx.info["inputs"]
        first = sitepackages.verify(dest, interpreter, model, inputs)
        if not first.ok:
            raise TargetError(f"{spec.identity()}: inference from the slimmed layer failed ({first.error}); "
                              "a slimming rule removed something the runtime needs.")
        compiled = sitepackages.ship_bytecode(dest, interpreter, first.modules)
        second = sitepackages.verify(dest, interpreter, model, inputs)
        if not second.ok or second.output != first.output:
            raise TargetError(f"{spec.identity()}: inference failed after shipping bytecode ({second.error}).")
        info.update(verified=True, bytecode=compiled, verify_import_ms=round(second.import_ms, 1),
                    interpreter_version=spec.python)
        return info
