"""`kind: lambda-layer`: the inference runtime and numpy for the target Lambda runtime, slimmed and verified."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelpack import limits
from modelpack.errors import TargetError
from modelpack.files.output import tree_bytes
from modelpack.host import interpreters
from modelpack.recipe.targets import LambdaLayerSpec
from modelpack.targets import lambda_limits, sitepackages
from modelpack.targets.base import Artifact, Target
from modelpack.targets.context import BuildContext, BuiltLayer
from modelpack.targets.runtimes import selected_runtime


class LambdaLayerTarget(Target):
    """Lambda layer zip: runtime wheels for the target platform, slimmed, bytecode shipped, verified."""

    NAME = "lambda-layer"
    Spec = LambdaLayerSpec

    @classmethod
    def model_room(cls, spec: LambdaLayerSpec) -> int | None:  # type: ignore[override]
        return limits.LAMBDA_UNZIPPED_TOTAL_BYTES if spec.model_in == "layer" else None

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        spec: LambdaLayerSpec = self.spec  # type: ignore[assignment]
        model = ctx.selected_file
        runtime = selected_runtime(ctx, spec.runtime)
        if model.suffix != runtime.model_suffix:
            raise TargetError(f"{spec.identity()}: runtime {runtime.name} cannot run the selected {model.suffix} model; "
                              "drop `runtime` or select a matching variant.")
        os_name, glibc = limits.LAMBDA_RUNTIMES[spec.python]
        interpreter = interpreters.find(spec.python, spec.interpreter)
        can_run = interpreter is not None and spec.arch == interpreters.host_arch()

        tree = sitepackages.cached(ctx, runtime, spec.python, spec.arch, glibc, os_name, spec.versions,
                                   interpreter if can_run else None, model)
        info = dict(ctx.read_tree_info(tree))
        if info.get("note"):
            ctx.report.notes.append(f"{spec.identity()}: {info['note']}")

        layer = ctx.work / "lambda-layer"
        shutil.rmtree(layer, ignore_errors=True)
        shutil.copytree(tree, layer / "python", ignore=sitepackages.bookkeeping(tree))
        if spec.model_in == "layer":
            (layer / "model").mkdir()
            shutil.copyfile(model, layer / "model" / f"model{model.suffix}")
        unzipped = tree_bytes(layer)
        zip_path = ctx.zip_tree(layer, out_dir / "lambda" / "layer.zip")
        zipped = zip_path.stat().st_size
        lambda_limits.enforce(ctx, spec.identity(), unzipped, {"layer.zip": zipped}, layers=1)
        info.update(python=spec.python, arch=spec.arch, runtime=runtime.name, os=os_name, model_in=spec.model_in,
                    zipped_bytes=zipped, compatible_runtime=f"python{spec.python}")
        ctx.layer = BuiltLayer(layer, spec, runtime, interpreter, can_run, unzipped, info)
        return [Artifact(self.NAME, "lambda/layer.zip", unzipped, info)]
