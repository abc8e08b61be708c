"""Run steps in a child process, so a converter that crashes takes down only its own variant.

Parent side: `run_jobs(jobs, log)` starts `python -m modelpack.steps.worker JOBS.json`, and restarts it after a crash
for the jobs still pending. Child side: runs each job, writing `result.json` (or `.started` as it begins).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from modelpack.files.jsonio import dumps_strict
from modelpack.measure.runner import private_tmp
from modelpack.steps.base import RESULT, StepJob

STARTED = ".started"


class WorkerState:
    """Per-process state: the model is loaded once per process and shared by the steps."""

    def __init__(self) -> None:
        self._models: dict[tuple, object] = {}

    @staticmethod
    def _key(job: StepJob) -> tuple:
        return job.model_path, job.model_format, repr(sorted((job.shapes or {}).items()))

    def model(self, job: StepJob):
        from modelpack.inputs import keras_io

        key = self._key(job)
        if key not in self._models:
            self._models[key] = keras_io.load(job.model_path, job.model_format, job.trust_code, job.custom_objects,
                                              job.shapes)
        return self._models[key]

    def release(self, job: StepJob) -> None:
        """Forget the job's model (a step that needs only what it exported frees it for its converter); the next
        `model(job)` loads it again."""
        import gc

        import keras

        from modelpack.steps.tflite_memory import return_freed_memory

        self._models.pop(self._key(job), None)
        keras.backend.clear_session()  # Keras' own references to the model's layers and variables
        gc.collect()
        return_freed_memory()


# Known converter failures and what a user can do about them, matched against the error text.
ADVICE = (
    ("TensorList", "a recurrent loop stayed as TensorList ops: give the recurrent layers a fixed sequence length, "
                   "or use an ONNX variant"),
    ("Select TF ops", "the model uses TensorFlow ops TFLite has no builtin for: replace that layer, or use an "
                      "ONNX variant"),
    ("neither a custom op nor a flex op", "the model uses TensorFlow ops TFLite has no builtin for: replace that "
                                          "layer, or use an ONNX variant"),
    ("failed to legalize operation", "the model uses TensorFlow ops TFLite has no builtin for: replace that layer, "
                                     "or use an ONNX variant"),
    ("Unsupported Ops", "tf2onnx has no ONNX equivalent for these ops: replace that layer, or use a TFLite variant"),
    ("are missing from the graph", "the converted graph asks for inputs the model does not have: use a TFLite "
                                   "variant"),
)
MAX_MESSAGE = 1000  # reports show a failure's reason whole; only tool dumps longer than this are cut


def describe(exc: BaseException) -> tuple[str, str]:
    """A step's error as (type name, message): the first meaningful line of the error and, for failures we
    know, what to do; never a traceback.

    MLIR diagnostics (`<unknown>:0: error: loc(...): text`) are reduced to their text. A message that carries a
    traceback (TensorFlow's "in user code:" errors re-raise the inner exception with its frames in the text) is
    reduced to the innermost `XxxError: text` line, never to a `File "...", line N` frame.
    """
    lines, had_frames = _without_frames(str(exc))
    name = type(exc).__name__
    raised = [m for m in map(EXCEPTION_LINE.match, lines) if m] if had_frames else []
    if raised:
        name, text = raised[-1].group(1), _with_keras_detail(raised[-1], lines)
    else:
        diagnostics = [_without_location(ln.split("error: ", 1)[1]) for ln in lines if "error: " in ln]
        meaningful = [ln for ln in lines if "error" in ln.lower() or "not supported" in ln.lower()]
        text = (diagnostics or meaningful or lines or [""])[0]
    if not type(exc).__module__.startswith("modelpack."):  # modelpack's own errors are written to be read whole
        text = text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
    whole = str(exc)
    advice = next((hint for marker, hint in ADVICE if marker in whole), None)
    return name, (f"{text} ({advice})" if advice and text else text)


def first_message(exc: BaseException) -> str:
    """`describe(exc)` as one line, `Type: message` (the form reports show)."""
    name, text = describe(exc)
    if text:
        return f"{name}: {text}"
    advice = next((hint for marker, hint in ADVICE if marker in str(exc)), None)
    return f"{name} ({advice})" if advice else name


FRAME = re.compile(r'^File "[^"]*", line \d+')
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Exit)): (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Keras 3 wraps a layer's error in this sentence; the cause is on the next line.
KERAS_WRAPPER = "Exception encountered when calling"


def _without_frames(text: str) -> tuple[list[str], bool]:
    """The non-empty lines of `text` without ANSI colours, traceback frames and the source line under each frame;
    and whether there were frames."""
    kept: list[str] = []
    after_frame = had_frames = False
    for raw in ANSI.sub("", text).splitlines():
        line = raw.strip()
        if not line:
            continue
        if FRAME.match(line):
            after_frame = had_frames = True
            continue
        if after_frame and not EXCEPTION_LINE.match(line):
            after_frame = False  # the frame's source line
            continue
        after_frame = False
        if line != "Traceback (most recent call last):" and line != "in user code:":
            kept.append(line)
    return kept, had_frames


def _with_keras_detail(match: re.Match, lines: list[str]) -> str:
    """The exception's text; Keras' "Exception encountered when calling X.call()." gets the cause appended."""
    text = match.group(2).strip()
    if text.startswith(KERAS_WRAPPER):
        at = lines.index(match.group(0))
        if at + 1 < len(lines):
            text = f"{text.rstrip('.')}: {lines[at + 1]}"
    return text


def _without_location(text: str) -> str:
    """Drop an MLIR `loc(...)` prefix (nested parentheses) and the colon after it."""
    if not text.startswith("loc("):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ")":
            return text[i + 1 :].lstrip(": ").strip() or text
    return text


def _child(jobs_file: str) -> None:
    from modelpack.steps import STEPS

    state = WorkerState()
    for raw in json.loads(Path(jobs_file).read_text()):
        job = StepJob(**raw)
        out = job.out
        if (out / RESULT).exists():
            continue
        out.mkdir(parents=True, exist_ok=True)
        (out / STARTED).touch()
        step = STEPS.get(job.step)()
        try:
            if step.REQUIRES:
                dep = json.loads((Path(job.dep_dir) / RESULT).read_text()) if job.dep_dir else {"ok": False}
                if not dep.get("ok"):
                    raise RuntimeError(f"needs {step.REQUIRES}, which failed")
            result = {"ok": True, "details": step.run(job, state) or {}}
        except Exception as exc:  # a failing step is recorded, the next one runs
            result = {"ok": False, "error": first_message(exc), "error_type": type(exc).__name__,
                      "message": describe(exc)[1],
                      "traceback": traceback.format_exc()}
        (out / RESULT).write_text(dumps_strict(result, default=str))
        sys.stdout.flush()


# TensorFlow's oneDNN CPU allocator keeps every large block it ever handed out in a pool of its own, so a model
# released after export stays resident for the whole conversion (measured: 526 MB kept of a 407 MB model). The
# convert stage's workers for a large model run without it: converting rewrites graphs, it does not train or
# predict (the stages that do keep oneDNN).
LARGE_MODEL_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def run_jobs(jobs: list[StepJob], log: Path, timeout_s: float = 3600,
             watch: Callable[[], None] | None = None, large: bool = False) -> dict[str, dict]:
    """Run the jobs in worker processes; return each job's result keyed by out_dir. `watch` is called about twice
    a second while a worker runs (to show what its steps say they are doing). `large`: the jobs only convert a
    model of limits.LARGE_MODEL_BYTES or more, so the worker runs with LARGE_MODEL_ENV."""
    pending = list(jobs)
    results: dict[str, dict] = {}
    while pending:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=log.parent) as f:
            f.write(dumps_strict([asdict(j) for j in pending]))
        with open(log, "ab") as logf:
            code = _run_worker(f.name, logf, timeout_s, log.parent, watch, large)
        Path(f.name).unlink(missing_ok=True)
        still: list[StepJob] = []
        crashed = False
        for job in pending:
            res_path = job.out / RESULT
            if res_path.exists():
                results[job.out_dir] = json.loads(res_path.read_text())
            elif (job.out / STARTED).exists() and not crashed:
                crashed = True
                why = f"timed out after {timeout_s:.0f} s" if code == "timeout" else f"exit code {code}"
                results[job.out_dir] = {"ok": False, "error": f"the {job.step} process crashed ({why}); see {log}"}
                (job.out / RESULT).write_text(dumps_strict(results[job.out_dir]))
            else:
                still.append(job)
        if not crashed and still:  # the worker died before starting anything: do not loop forever
            for job in still:
                results[job.out_dir] = {"ok": False, "error": f"the worker process exited with code {code}; see {log}"}
            still = []
        pending = still
    return results


def _run_worker(jobs_file: str, logf, timeout_s: float, tmp_parent: Path,
                watch: Callable[[], None] | None, large: bool = False) -> int | str:
    """One worker process over `jobs_file`: its exit code, or "timeout". The worker is killed on any exception
    here, SIGTERM and Ctrl-C included, so an interrupted build leaves no step running."""
    proc = subprocess.Popen([sys.executable, "-m", "modelpack.steps.worker", jobs_file], stdout=logf,
                            stderr=subprocess.STDOUT,
                            env={**(LARGE_MODEL_ENV if large else {}), **os.environ, **private_tmp(tmp_parent)})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return proc.wait(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    proc.kill()
                    proc.wait()
                    return "timeout"
                if watch is not None:
                    watch()
    except BaseException:
        proc.kill()
        proc.wait()
        raise


if __name__ == "__main__":
    _child(sys.argv[1])
