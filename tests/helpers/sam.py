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
