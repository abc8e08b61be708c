"""Measure one model in this fresh process, importing only its runtime.

Run as a script (never imported by modelpack itself):
  python probe.py warm  SPEC.json   -> evaluation outputs + warm latency
  python probe.py cold  SPEC.json   -> import / load / first-inference times and peak RSS
SPEC: {"model": path, "kind": "tflite|onnx|keras", "runtime_dir": dir, "threads": n, "data": eval.npz,
       "inputs": [names], "out": outputs.npz, "warmup": n, "runs": n, "batch": n, ...keras loading options}
"""

from __future__ import annotations

import json
import resource
import sys
import time

T0 = time.perf_counter()


def _load(spec: dict):
    """Import the runtime and open the model; returns (predict(named) -> list, import_s, load_s)."""
    t = time.perf_counter()
    if spec["kind"] == "keras":
        from modelpack.inputs import keras_io

        import_s = time.perf_counter() - t
        t = time.perf_counter()
        loaded = keras_io.load(spec["model"], spec["format"], spec.get("trust_code", False), spec.get("custom_objects"))
        names = [i["name"] for i in loaded.inputs]

        def predict(named):
            return loaded.predict([named[n] for n in names], batch=max(len(v) for v in named.values()))

        return predict, import_s, time.perf_counter() - t
    sys.path.insert(0, spec["runtime_dir"])
    import model_runtime

    if spec["kind"] == "onnx":
        import onnxruntime  # noqa: F401  (timed as import, not load)
    else:
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError:
            pass
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    model = model_runtime.load(spec["model"], spec.get("threads", 1))
    return model.predict, import_s, time.perf_counter() - t


def _inputs(spec: dict, start: int, stop: int) -> dict:
    import numpy as np

    with np.load(spec["data"]) as npz:
        return {name: npz[f"in_{i}"][start:stop] for i, name in enumerate(spec["inputs"])}


def peak_rss_mb() -> float:
    """Peak RSS of this process image. ru_maxrss would include the parent's size at fork on Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cold(spec: dict) -> dict:
    predict, import_s, load_s = _load(spec)
    x = _inputs(spec, 0, spec.get("batch", 1))
    t = time.perf_counter()
    predict(x)
    first_s = time.perf_counter() - t
    return {
        "import_ms": import_s * 1e3,
        "load_ms": load_s * 1e3,
        "first_ms": first_s * 1e3,
        "total_ms": (import_s + load_s + first_s) * 1e3,
        "peak_rss_mb": peak_rss_mb(),
    }


def warm(spec: dict) -> dict:
    import numpy as np

    predict, _, _ = _load(spec)
    if spec.get("out"):  # evaluation outputs, unless only timing is wanted
        with np.load(spec["data"]) as npz:
            n = len(npz["in_0"])
        chunk = spec.get("eval_batch", 1)
        parts = []
        for start in range(0, n, chunk):
            parts.append(predict(_inputs(spec, start, start + chunk)))
        outputs = {f"out_{i}": np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(len(parts[0]))}
        np.savez(spec["out"], **outputs)

    batch = spec.get("batch", 1)
    x = _inputs(spec, 0, batch)
    if len(next(iter(x.values()))) < batch:  # fewer samples than the batch: repeat them
        x = {k: np.resize(v, (batch, *v.shape[1:])) for k, v in x.items()}
    for _ in range(spec.get("warmup", 10)):
        predict(x)
    times = []
    for _ in range(spec.get("runs", 100)):
        t = time.perf_counter()
        predict(x)
        times.append((time.perf_counter() - t) * 1e3)
    return {"latency_ms": times}


if __name__ == "__main__":
    mode, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    result = {"warm": warm, "cold": cold}[mode](spec)
    from modelpack.host.childproc import (
        write,  # after the measurement: its import is no part of what was timed
    )
    from modelpack.measure.runner import MARKER

    write(MARKER, result)
