"""What each inference runtime needs at run time, and what of it inference never loads."""

from __future__ import annotations

from dataclasses import dataclass


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


@dataclass(frozen=True)
class Runtime:
    name: str
    packages: tuple[str, ...]  # installed without their declared dependencies: these are all inference imports
    model_suffix: str
    prune: tuple[str, ...]  # glob patterns, relative to site-packages, removed after install
    numpy2_since: str | None = None  # first release built against numpy 2; older ones need numpy<2

    def numpy_spec(self, runtime_version: str) -> str:
        """The numpy requirement this runtime version can import with (its metadata does not always say)."""
        if self.numpy2_since and _version(runtime_version) < _version(self.numpy2_since):
            return "numpy<2"
        return "numpy"


# Removed from every tree: never imported when serving.
COMMON_PRUNE = (
    "**/__pycache__", "**/*.pyi", "**/py.typed", "bin", "**/tests", "**/testing/_private/extbuild.py",
    "numpy/f2py", "numpy/_pyinstaller", "numpy/typing/tests", "numpy/distutils", "numpy/doc",
    "numpy/_core/include", "numpy/_core/lib/pkgconfig", "numpy/random/_examples", "numpy/*.pxd",
    "numpy/_core/*.pxd", "numpy/random/*.pxd",
    "*.dist-info/RECORD", "*.dist-info/INSTALLER", "*.dist-info/REQUESTED", "*.dist-info/direct_url.json",
)

# numpy 2 loads these lazily and nothing on the serving path asks for them (nor for its test-only extension
# modules); numpy 1 imports several eagerly, so they stay there. numpy.ma stays: np.median needs it.
NUMPY2_PRUNE = ("numpy/random", "numpy/fft", "numpy/testing", "numpy/typing",
                "numpy/_core/_*_tests.*.so", "numpy/_core/_simd.*.so")

RUNTIMES = {
    "onnxruntime": Runtime(
        "onnxruntime", ("onnxruntime", "numpy"), ".onnx",
        ("onnxruntime/tools", "onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/datasets",
         "onnxruntime/backend", "onnxruntime/capi/libonnxruntime.so*"),
        numpy2_since="1.19.0",
    ),
    "litert": Runtime(
        "litert", ("ai-edge-litert", "numpy"), ".tflite",
        ("ai_edge_litert/aot", "ai_edge_litert/*converter*", "ai_edge_litert/_pywrap_analyzer_wrapper*",
         "ai_edge_litert/_pywrap_tensorflow_lite_calibration_wrapper*", "ai_edge_litert/_pywrap_tfl_calibration*",
         "ai_edge_litert/_pywrap_modify_model_interface*", "ai_edge_litert/libLiteRtWebGpuAccelerator.so",
         "ai_edge_litert/*_pb2.py", "ai_edge_litert/tools", "ai_edge_litert/vendors", "ai_edge_litert/internal/test*"),
    ),
}

FORMAT_RUNTIME = {"onnx": "onnxruntime", "tflite": "litert"}


def selected_runtime(ctx, name: str | None = None) -> Runtime:
    """The runtime `name`, or the one the selected variant's format needs."""
    return RUNTIMES[name or FORMAT_RUNTIME[ctx.report.variant(ctx.report.selected)["format"]]]
