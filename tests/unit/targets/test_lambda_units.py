"""Lambda facts without building anything: size limits, platform tags, numpy constraints."""

from __future__ import annotations

from modelpack.targets import lambda_limits
from modelpack.targets.runtimes import RUNTIMES
from modelpack.targets.sitepackages import platform_tags


def test_within_limits():
    assert lambda_limits.check(100_000_000, {"layer.zip": 30_000_000}, layers=1) == ([], [])


def test_unzipped_total_over_250_mb_is_an_error():
    errors, _ = lambda_limits.check(262_144_001, {}, layers=1)
    assert len(errors) == 1 and "262144000 bytes" in errors[0] and "container image" in errors[0]
    assert lambda_limits.check(262_144_000, {}, layers=1) == ([], [])


def test_more_than_five_layers_is_an_error():
    errors, _ = lambda_limits.check(1, {}, layers=6)
    assert errors == ["6 layers; a Lambda function can use at most 5"]


def test_zip_over_50_mib_is_a_warning_with_the_s3_path():
    errors, warnings = lambda_limits.check(1, {"layer.zip": 50 * 1024 * 1024 + 1}, layers=1)
    assert errors == [] and "S3" in warnings[0] and "layer.zip" in warnings[0]


def test_platform_tags_cover_every_glibc_up_to_the_runtime():
    al2 = platform_tags((2, 26), "x86_64")
    assert al2[0] == "manylinux_2_26_x86_64" and "manylinux_2_17_x86_64" in al2 and al2[-1] == "manylinux2014_x86_64"
    assert "manylinux_2_28_x86_64" not in al2
    al2023 = platform_tags((2, 34), "arm64")
    assert "manylinux_2_28_aarch64" in al2023 and "manylinux_2_34_aarch64" in al2023


def test_old_onnxruntime_needs_numpy_1():
    ort = RUNTIMES["onnxruntime"]
    assert ort.numpy_spec("1.16.3") == "numpy<2"
    assert ort.numpy_spec("1.32.0") == "numpy"
    assert RUNTIMES["litert"].numpy_spec("1.4.0") == "numpy"
