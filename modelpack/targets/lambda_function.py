"""`kind: lambda-function`: a function zip with the lazy, load-once handler, its config and (usually) the model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from modelpack import limits
from modelpack.errors import TargetError
from modelpack.files.output import tree_bytes
from modelpack.recipe.targets import LambdaFunctionSpec
from modelpack.targets import (
    handler_check,
    handler_files,
    lambda_limits,
    onnx_form,
    sam,
    serving_options,
    sitepackages,
    snapstart,
)
from modelpack.targets.base import Artifact, Target

if TYPE_CHECKING:
    from modelpack.targets.context import BuildContext

class LambdaFunctionTarget(Target):
    """Lambda function zip: load-once handler, TF Serving-style API, EMF metrics, SAM template."""

    NAME = "lambda-function"
    Spec = LambdaFunctionSpec
    USES = ("lambda-layer",)  # its runtime, and the model with model_in: layer

    @classmethod
    def model_room(cls, spec: LambdaFunctionSpec) -> int | None:  # type: ignore[override]
        # A model downloaded at cold start (model_source) lands in /tmp, which has no package limit.
        return None if spec.model_source else limits.LAMBDA_UNZIPPED_TOTAL_BYTES

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        spec: LambdaFunctionSpec = self.spec  # type: ignore[assignment]
        model = ctx.selected_file
        layer = ctx.layer
        in_layer = bool(layer and layer.spec.model_in == "layer")
        if in_layer and spec.model_source:
            raise TargetError("lambda-function: model_source downloads the model at cold start, but the lambda-layer "
                              "target carries it (model_in: layer); drop one of the two.")
        form = None
        if not in_layer and not spec.model_source:  # an ONNX model ships in the form its runtime opens fastest
            model, form = onnx_form.fastest(ctx, model, layer)
        fn = ctx.work / "lambda-function"
        shutil.rmtree(fn, ignore_errors=True)
        config = handler_files.write(ctx, fn, ("lambda", "handler.py"), model_in_layer=in_layer, source=spec.model_source,
                                     model=model,
                                     options={**spec.response_options(), "load": spec.load, "route": spec.route,
                                              "payload_limit_bytes": limits.LAMBDA_SYNC_PAYLOAD_BYTES,
                                              **serving_options.config(spec),
                                              **({"snapstart": True} if spec.snapstart else {})})
        if spec.snapstart:  # the sample the handler answers before Lambda snapshots it
            snapstart.check(layer.spec.python if layer else "3.12",
                            snapstart.tmp_needed_mb(model.stat().st_size) if spec.model_source else None)
            snapstart.write_sample(fn, handler_check.sample(ctx))
        extras = serving_options.extra_packages(spec) + serving_options.request_packages(ctx)
        if extras:
            python, arch = (layer.spec.python, layer.spec.arch) if layer else ("3.12", "x86_64")
            sitepackages.install_extra(fn, extras, python, arch, limits.LAMBDA_RUNTIMES[python][1], ctx)
        bytecode = handler_files.ship_bytecode(fn, layer.interpreter if layer else None, ctx)
        uploaded = serving_options.upload(spec.model_source, model) if spec.upload and spec.model_source else None
        unzipped = tree_bytes(fn)
        total = unzipped + (layer.unzipped_bytes if layer else 0)
        zip_path = ctx.zip_tree(fn, out_dir / "lambda" / "function.zip")
        lambda_limits.enforce(ctx, "lambda-function", total, {"function.zip": zip_path.stat().st_size},
                              layers=1 if layer else 0)
        details = {"handler": "handler.handler", "route": f"/{spec.route}", "load": spec.load, "unzipped_total_bytes": total,
                   "handler_bytecode": bytecode,
                   "model_in": "source" if spec.model_source else ("layer" if in_layer else "function"),
                   "layers": 1 if layer else 0, **serving_options.describe(spec),
                   **({"upload": uploaded} if uploaded else {}), **({"packages_added": list(extras)} if extras else {}),
                   **serving_options.request_details(ctx, fn), **({"snapstart": True} if spec.snapstart else {}),
                   **({"model_form": form} if form else {})}
        if layer is None:
            ctx.report.notes.append("lambda-function: no lambda-layer target in this recipe; attach a layer with "
                                    "numpy and the inference runtime when deploying.")
        elif layer.can_run:
            sample = handler_check.request_sample(ctx)
            extra_env = {}
            if spec.model_source:  # checked from a verified local copy; the download itself needs the cloud
                seeded = ctx.work / "model-source-copy"
                serving_options.seed_local_copy(model, config["model"]["sha256"], seeded)
                extra_env["MODELPACK_MODEL_DIR"] = str(seeded)
            try:
                check = handler_check.cold_start(fn, layer.dir, layer.interpreter, sample, extra_env=extra_env,
                                                 route=spec.route)
            except RuntimeError as exc:
                raise TargetError(str(exc)) from None
            names = [o["name"] for o in ctx.info["outputs"]]
            err = handler_check.agree(check.pop("response"), names, ctx.selected_outputs_first(),
                                      "lambda-function: the handler's prediction", "the selected variant's")
            check["served_shapes"] = handler_check.shapes(sample)
            if err is not None:
                check["max_abs_err_vs_variant"] = err
            details["handler_cold_start_ms"] = check["cold_start_ms"]
            details["handler_check"] = {k: v for k, v in check.items() if k != "cold_start_ms"}
        artifacts = [Artifact(self.NAME, "lambda/function.zip", unzipped, details)]
        if spec.sam:
            artifacts.append(sam.write(ctx, spec, layer, out_dir / "lambda" / "template.yaml"))
        return artifacts
