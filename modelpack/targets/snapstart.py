"""Lambda SnapStart for a lambda-function target: the checks, the sample the handler answers before the snapshot,
and what it changes in template.yaml."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from modelpack import limits
from modelpack.errors import TargetError

ALIAS = "live"
SAMPLE = "snapstart-sample.npz"  # the name serving/common/snapstart.py reads


def check(python: str, tmp_mb: int | None) -> None:
    """Refuse what SnapStart cannot run: a Python before 3.12, or /tmp over 512 MB (which a model_source
    download may need). The recipe refuses images and provisioned concurrency already; modelpack attaches no
    EFS file system (publish refuses a function that has one)."""
    if tuple(int(n) for n in python.split(".")) < limits.LAMBDA_SNAPSTART_MIN_PYTHON:
        raise TargetError(f"lambda-function: snapstart needs python3.12 or later; this function runs python{python}. "
                          "Build the lambda-layer for 3.12+ or drop snapstart.")
    if tmp_mb is not None and tmp_mb > limits.LAMBDA_SNAPSTART_MAX_TMP_MB:
        raise TargetError(f"lambda-function: snapstart allows at most {limits.LAMBDA_SNAPSTART_MAX_TMP_MB} MB of /tmp, "
                          f"but downloading this model from model_source needs {tmp_mb} MB there; package the model "
                          "(drop model_source) or drop snapstart.")


def tmp_needed_mb(model_bytes: int) -> int:
    """/tmp for a model_source download: the model and its partial download side by side, rounded up."""
    return -(-2 * model_bytes // limits.MB)


def write_sample(dest: Path, arrays: dict[str, np.ndarray]) -> Path:
    """The first evaluation sample as an .npz the handler answers before the snapshot; written byte for byte
    the same for the same arrays (fixed entry times, sorted names)."""
    path = dest / SAMPLE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, buffer.getvalue())
    return path


def template(fn: dict) -> None:
    """SnapStart on published versions, and the alias that publishes one with every deployment."""
    fn["AutoPublishAlias"] = ALIAS
    fn["SnapStart"] = {"ApplyOn": "PublishedVersions"}
