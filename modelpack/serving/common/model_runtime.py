"""Run a TFLite or ONNX model with numpy arrays in and out.

Shipped inside every generated artifact and used by the build's own measurements (loaded there by path), so it
depends only on numpy, the standard library and one inference runtime (onnxruntime, or LiteRT / tflite-runtime).
"""

from __future__ import annotations

import os
import threading

import numpy as np


class ShapeError(ValueError):
    """The model cannot run inputs of the shape a request sent (a sequence too short for its layers): the
    request is at fault, not the model, so handlers answer it with a 400."""


class TFLiteModel:
    """A .tflite model behind its serving signature; int8 I/O is (de)quantized here."""

    def __init__(self, path: str, threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # older stacks
            from tflite_runtime.interpreter import Interpreter
        self._interpreter = it = Interpreter(model_path=path, num_threads=threads)
        signatures = it.get_signature_list()
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = it.get_signature_runner(key)
        self._in = runner.get_input_details()
        self._out = runner.get_output_details()
        self.output_names = sorted(self._out, key=_output_order)
        del runner  # it holds views of the interpreter's buffers, which block allocate_tensors()
        # A free dimension other than the batch is 1 in the default shape, which some graphs cannot run (a
        # 'valid' convolution over a length-1 sequence): such a model is allocated at its first request's
        # shape instead, and answers through the general path until then.
        try:
            it.allocate_tensors()
            allocated = True
        except RuntimeError:
            if not any(_free_inner_dim(d) for d in self._in.values()):
                raise
            allocated = False
        # Call the interpreter by tensor index: the signature runner's per-call bookkeeping costs more than
        # a small model's whole inference. Every per-tensor decision is made here, once.
        self._set, self._invoke, self._get, self._resize, self._allocate = _tensor_calls(it)
        self._feeds = [(name, d["index"], np.dtype(d["dtype"]), d) for name, d in self._in.items()]
        self._fetches = [(self._out[n]["index"], self._out[n] if _is_quantized(self._out[n]) else None)
                         for n in self.output_names]
        self._shapes = {index: tuple(d["shape"]) for _, index, _, d in self._feeds}
        self._allocated_shapes = dict(self._shapes) if allocated else None
        self._resized = not allocated
        # A model converted with a fixed batch of 1 (a recurrent loop frozen for a static shape) cannot be
        # resized: larger batches run one sample at a time.
        self._one_at_a_time = all(_fixed_batch_of_one(d) for _, _, _, d in self._feeds)
        self._lock = threading.Lock()
        self._fast = len(self._feeds) == 1 and len(self._fetches) == 1 and self._fetches[0][1] is None
        if self._fast and allocated:
            self.predict = self._fast_path()

    def _fast_path(self):
        """predict() for the common case, one input and one plain output, as a closure over everything it
        needs: on a small model, attribute lookups and loops cost as much as the inference itself."""
        name, index, _, _ = self._feeds[0]
        out = self._fetches[0][0]
        acquire, release, general = self._lock.acquire, self._lock.release, self._predict
        set_tensor, invoke, get_tensor = self._set, self._invoke, self._get

        def predict(named: dict[str, np.ndarray]) -> list[np.ndarray]:
            acquire()
            try:
                try:
                    # set_tensor checks dtype and shape itself; anything else takes the general path,
                    # which converts or resizes.
                    set_tensor(index, named[name])
                except ValueError:
                    return general(named)
                invoke()
                return [get_tensor(out)]
            finally:
                release()

        return predict

    def predict(self, named: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._locked_predict(named)

    def _locked_predict(self, named: dict[str, np.ndarray]) -> list[np.ndarray]:
        # One interpreter is not safe to call from several threads (Azure's worker runs requests on a pool).
        with self._lock:
            return self._predict(named)

    def _predict(self, named: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._one_at_a_time:
            n = len(named[self._feeds[0][0]])
            if n > 1:
                parts = [self._predict_batch({k: v[i : i + 1] for k, v in named.items()}) for i in range(n)]
                return [np.concatenate(outs) for outs in zip(*parts)]
        return self._predict_batch(named)

    def _predict_batch(self, named: dict[str, np.ndarray]) -> list[np.ndarray]:
        arrays = []
        for name, index, dtype, detail in self._feeds:
            x = named[name]
            if x.dtype != dtype:
                x = _quantize(x, detail)
            if x.shape != self._shapes[index]:
                self._resize(index, x.shape)
                self._shapes[index] = x.shape
                self._resized = True
            arrays.append((index, x))
        if self._resized:
            self._reallocate()
        for index, x in arrays:
            self._set(index, x)
        self._invoke()
        get = self._get
        return [get(i) if q is None else _dequantize(get(i), q) for i, q in self._fetches]

    def _reallocate(self) -> None:
        """Allocate for the shapes just set; on refusal go back to the last shapes that ran and say why."""
        try:
            self._allocate()
        except RuntimeError as exc:
            asked = ", ".join(f"{name} {tuple(int(n) for n in self._shapes[index])}" for name, index, _, _ in self._feeds)
            # A failed allocation leaves the interpreter unallocated: restore shapes it can run, so the
            # next request (on the fast path too) finds it usable.
            if self._allocated_shapes is not None:
                for index, shape in self._allocated_shapes.items():
                    self._resize(index, shape)
                self._allocate()
                self._shapes = dict(self._allocated_shapes)
                self._resized = False
            # The runtime's error reporter repeats every earlier message: keep the first.
            why = str(exc).strip()
            end = why.find("failed to prepare.")
            raise ShapeError(f"the model cannot run inputs of shape {asked} (too short for its layers?): "
                             f"{why if end < 0 else why[: end + len('failed to prepare.')]}") from None
        self._resized = False
        first = self._allocated_shapes is None
        self._allocated_shapes = dict(self._shapes)
        if first and self._fast:
            self.predict = self._fast_path()


class OnnxModel:
    """An .onnx model (or one in ONNX Runtime's own .ort format) in an onnxruntime session on the CPU."""

    def __init__(self, path: str, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = path
        if path.endswith(".ort"):
            # The session is created from these bytes in place, without copying them first. Not
            # use_ort_model_bytes_for_initializers: the Python binding hands the session a copy that is freed
            # once the session exists, so weights left pointing into it would be read from freed memory.
            with open(path, "rb") as f:
                source = f.read()
            options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
        self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self._session.get_outputs()]

    def predict(self, named: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._session.run(None, named)


def _tensor_calls(it) -> tuple:
    """set, invoke, get, resize and allocate for one interpreter, resolved once.

    The public Interpreter methods are one-line forwards to the native wrapper, and invoke() first counts
    references to prove no numpy view of a tensor buffer is alive (tensor() hands those out). This module
    never asks for views, only copies (set_tensor / get_tensor), so it calls the wrapper itself: on a
    small model the forwards and the check cost more than the lock that makes sharing safe. Holding the
    wrapper's methods makes the public ones refuse to run, so everything here goes through these five.
    """
    raw = getattr(it, "_interpreter", None)
    names = ("SetTensor", "Invoke", "GetTensor", "ResizeInputTensor", "AllocateTensors")
    if raw is None or not all(hasattr(raw, n) for n in names):
        return (it.set_tensor, it.invoke, it.get_tensor, it.resize_tensor_input, it.allocate_tensors)
    resize_native = raw.ResizeInputTensor

    def resize(index: int, shape: tuple) -> None:
        resize_native(index, np.array(shape, dtype=np.int32), False)

    return raw.SetTensor, raw.Invoke, raw.GetTensor, resize, raw.AllocateTensors


def _fixed_batch_of_one(detail: dict) -> bool:
    signature = detail.get("shape_signature")
    return signature is not None and len(signature) > 0 and int(signature[0]) == 1


def _free_inner_dim(detail: dict) -> bool:
    signature = detail.get("shape_signature")
    return signature is not None and any(int(n) < 0 for n in list(signature)[1:])


def _is_quantized(detail: dict) -> bool:
    scale, _ = detail.get("quantization", (0.0, 0))
    return bool(scale) and np.issubdtype(detail["dtype"], np.integer)


def _output_order(name: str) -> tuple:
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail), name) if tail.isdigit() else (1, 0, name)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer) and np.issubdtype(x.dtype, np.floating):
        scale, zero = detail["quantization"]
        if scale:
            info = np.iinfo(dtype)
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail.get("quantization", (0.0, 0))
    if scale and np.issubdtype(y.dtype, np.integer):
        return (y.astype(np.float32) - zero) * np.float32(scale)
    return y


LOADERS = {".tflite": TFLiteModel, ".onnx": OnnxModel, ".ort": OnnxModel}


def load(path: str, threads: int = 1):
    """Open a model file with the runtime its extension names."""
    ext = os.path.splitext(path)[1]
    if ext not in LOADERS:
        raise ValueError(f"no runtime for {ext!r} files")
    return LOADERS[ext](path, threads)
