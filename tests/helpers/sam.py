"""SAM templates in tests: a build context and a layer as the targets hand them on, and the `sam` command."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from modelpack.recipe.targets import LambdaLayerSpec
from modelpack.targets.context import BuiltLayer
from tests.helpers.paths import ROOT
from tests.helpers.services import need


def sam_cli() -> str:
    """The `sam` of .ci/run's separate environment (aws-sam-cli pins click and boto3), else the one on PATH."""
    return need("sam", "validating templates with `sam validate --lint`", ROOT / ".venv-sam" / "bin" / "sam")


def fake_ctx(tmp: Path) -> SimpleNamespace:
    model = tmp / "model.onnx"
    model.write_bytes(b"\0" * 1000)
    report = SimpleNamespace(memory=None, selected="onnx-fp32", notes=[])
    return SimpleNamespace(recipe=SimpleNamespace(name="digits"), report=report, selected_file=model)


def layer_info() -> BuiltLayer:
    """A layer as the lambda-layer target hands it on (only its spec and runtime name reach the template)."""
    return BuiltLayer(dir=Path("layer"), spec=LambdaLayerSpec(kind="lambda-layer", python="3.12", arch="arm64"),
                      runtime=SimpleNamespace(name="onnxruntime"), interpreter=None, can_run=False,
                      unzipped_bytes=0, info={})


def tiny_dist(root: Path, layer_bytes: int = 0, report: dict | None = None, **spec) -> Path:
    """A dist as a build leaves it for publish and tune: report.json, template.yaml (written by the build's own
    template code for a lambda-function spec), a function zip and a layer zip (padded to `layer_bytes`)."""
    import json
    import zipfile

    from modelpack.recipe.targets import LambdaFunctionSpec
    from modelpack.targets import sam

    dist = root / "dist"
    (dist / "lambda").mkdir(parents=True)
    (dist / "report.json").write_text(json.dumps({"name": "tiny", "passed": True, "selected": "onnx-fp32",
                                                  **(report or {})}))
    with zipfile.ZipFile(dist / "lambda" / "function.zip", "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    with zipfile.ZipFile(dist / "lambda" / "layer.zip", "w") as z:
        z.writestr("python/empty.py", "")
    if layer_bytes:
        with open(dist / "lambda" / "layer.zip", "r+b") as f:
            f.truncate(layer_bytes)
    sam.write(fake_ctx(root), LambdaFunctionSpec(kind="lambda-function", **spec), layer_info(),
              dist / "lambda" / "template.yaml")
    return dist
