"""Knowledge distillation: a student trained to match the model's outputs (softened by a temperature) and the
labels, on the recipe's training split with a held-out part for early stopping; seeded and deterministic on CPU.

Keras 3 ships keras.distillation, but its logits distillation softens the model's outputs as logits; most
classifiers end in a softmax, so this loop takes the log of probabilities as the logits (the same up to a constant
per sample) and trains with one plain tf.function step, which also lets every epoch report its loss.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from modelpack.errors import DistillError
from modelpack.files.jsonio import dumps_strict
from modelpack.steps.base import Step, StepJob
from modelpack.steps.student import derive, load_student

EPS = 1e-7


def output_kind(y: np.ndarray, task: str) -> str:
    """How an output reads: classification scores as `probabilities` (non-negative rows summing to one),
    `sigmoid` (one unit in [0, 1]) or `logits`; regression outputs as `values`."""
    if task == "regression":
        return "values"
    flat = y.reshape(len(y), -1)
    in_unit = bool(np.all(flat >= 0) and np.all(flat <= 1))
    if flat.shape[1] == 1:
        return "sigmoid" if in_unit else "sigmoid-logit"
    return "probabilities" if in_unit and bool(np.allclose(flat.sum(axis=1), 1, atol=1e-3)) else "logits"


def class_labels(ys: np.ndarray, classes: int) -> np.ndarray:
    """Integer class labels (one-hot rows become their index)."""
    if ys.ndim == 2 and ys.shape[1] == classes and classes > 1:
        return np.argmax(ys, axis=1).astype(np.int64)
    return ys.reshape(len(ys)).astype(np.int64)


def _logits(tf: Any, y: Any, kind: str) -> Any:
    """Scores as logits over classes (one sigmoid unit becomes two classes)."""
    y = tf.reshape(y, [tf.shape(y)[0], -1])
    if kind == "logits":
        return y
    if kind == "sigmoid-logit":
        return tf.concat([tf.zeros_like(y), y], axis=1)
    probs = tf.concat([1 - y, y], axis=1) if kind == "sigmoid" else y
    return tf.math.log(tf.clip_by_value(probs, EPS, 1.0))


def make_loss(tf: Any, opts: dict, teacher_kind: str, student_kind: str):
    """loss(student outputs, teacher outputs, labels): alpha x distillation + (1 - alpha) x label loss; for
    classification the distillation term is KL(softmax(teacher/T) || softmax(student/T)) x T^2, for regression
    the squared error to the model's outputs."""
    alpha, temp = opts["alpha"], opts["temperature"]

    def loss(s: Any, t: Any, y: Any) -> Any:
        if student_kind == "values":
            s2 = tf.reshape(s, [tf.shape(s)[0], -1])
            t2 = tf.reshape(t, [tf.shape(t)[0], -1])
            y2 = tf.reshape(tf.cast(y, s2.dtype), tf.shape(s2))
            return alpha * tf.reduce_mean((s2 - t2) ** 2) + (1 - alpha) * tf.reduce_mean((s2 - y2) ** 2)
        zs, zt = _logits(tf, s, student_kind), _logits(tf, t, teacher_kind)
        pt = tf.nn.softmax(zt / temp)
        kd = tf.reduce_mean(tf.reduce_sum(pt * (tf.math.log(pt + EPS) - tf.nn.log_softmax(zs / temp)), axis=1))
        hard = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=zs))
        return alpha * kd * temp * temp + (1 - alpha) * hard

    return loss


class DistillStep(Step):
    """Train the student (derived at optimize.distill.width, or the recipe's file) against the model."""

    NAME = "distill"
    FILE = "student.keras"
    USES_TRAINING = True

    def options(self, recipe: Any) -> dict:
        spec = recipe.optimize.distill.model_dump()
        spec["student"] = spec["student"] is not None  # the file itself is keyed by its digest (job data)
        return {**spec, "task": recipe.task, "seed": recipe.data.seed}

    def run(self, job: StepJob, ctx: Any) -> dict:
        import keras
        import tensorflow as tf

        opts = job.options
        t0 = time.perf_counter()
        tf.config.experimental.enable_op_determinism()  # same recipe and data, same student
        if opts["task"] not in ("classification", "regression"):
            raise DistillError(f"task {opts['task']} gives no loss to train a student with; distillation trains "
                               "classification and regression models (set task)")
        loaded = ctx.model(job)
        if len(loaded.outputs) != 1:
            raise DistillError(f"the model has {len(loaded.outputs)} outputs; optimize.distill trains students of "
                               "single-output models")
        with np.load(job.data["training"]) as npz:
            xs = [npz[f"in_{i}"].astype(np.float32) for i in range(len(loaded.inputs))]
            ys = npz["labels"]
        teacher_out = loaded.predict(xs)[0].astype(np.float32)  # the model's answers, computed once
        # Keras draws unseeded initialisers from a process-wide generator made at its first use (loading a model
        # draws from it too): a fresh one, made after the seed is set, so the student is the same whatever this
        # worker ran or loaded before.
        keras.backend.clear_session()
        keras.utils.set_random_seed(opts["seed"])
        if opts["student"]:
            student = load_student(job.data["student"], loaded.inputs, loaded.outputs)
        elif loaded.keras_model is None:
            raise DistillError("a SavedModel has no Keras layers to derive a student from; give "
                               "optimize.distill.student (a Keras model file) instead of optimize.distill.width")
        else:
            student = derive(loaded.keras_model, opts["width"])
        teacher_params, student_params = int(loaded.params), int(student.count_params())
        if student_params >= teacher_params:
            raise DistillError(f"the student has {student_params:,} parameters, not fewer than the model's "
                               f"{teacher_params:,}; give a smaller width or student")
        task = opts["task"]
        labels = (class_labels(ys, int(np.prod(teacher_out.shape[1:]))) if task == "classification"
                  else ys.astype(np.float32))
        n = len(labels)
        n_val = max(1, round(n * opts["validation"]))
        if n - n_val < 1:
            raise DistillError(f"{n} training sample(s) leave none to train on after holding out "
                               f"optimize.distill.validation {opts['validation']:g}; give more training samples")
        order = np.random.default_rng(opts["seed"]).permutation(n)
        train, val = order[n_val:], order[:n_val]
        first = student([x[:2] for x in xs] if len(xs) > 1 else xs[0][:2], training=False)
        kinds = (output_kind(teacher_out, task), output_kind(np.asarray(first), task))
        loss_fn = make_loss(tf, opts, *kinds)
        optimizer = keras.optimizers.Adam(opts["learning_rate"])

        def feed(idx: np.ndarray) -> Any:
            part = [tf.constant(x[idx]) for x in xs]
            return part if len(part) > 1 else part[0]

        @tf.function(reduce_retracing=True)
        def train_step(x, t, y):
            with tf.GradientTape() as tape:
                value = loss_fn(student(x, training=True), t, y)
            grads = tape.gradient(value, student.trainable_variables)
            optimizer.apply_gradients(zip(grads, student.trainable_variables))
            return value

        @tf.function(reduce_retracing=True)
        def eval_step(x, t, y):
            return loss_fn(student(x, training=False), t, y)

        def run_epoch(idx: np.ndarray, step: Any, rng: np.random.Generator | None) -> float:
            idx = rng.permutation(idx) if rng is not None else idx
            total = 0.0
            for start in range(0, len(idx), opts["batch_size"]):
                b = idx[start : start + opts["batch_size"]]
                total += float(step(feed(b), tf.constant(teacher_out[b]), tf.constant(labels[b]))) * len(b)
            return total / len(idx)

        rng = np.random.default_rng(opts["seed"] + 1)
        curve: list[dict] = []
        best, best_epoch, best_weights = float("inf"), 0, student.get_weights()
        for epoch in range(1, opts["epochs"] + 1):
            e0 = time.perf_counter()
            loss = run_epoch(train, train_step, rng)
            val_loss = run_epoch(val, eval_step, None)
            if not (np.isfinite(loss) and np.isfinite(val_loss)):
                raise DistillError(f"the distillation loss became {loss} at epoch {epoch}; lower "
                                   "optimize.distill.learning_rate or temperature")
            curve.append({"epoch": epoch, "loss": round(loss, 6), "val_loss": round(val_loss, 6),
                          "seconds": round(time.perf_counter() - e0, 3)})
            if val_loss < best:
                best, best_epoch, best_weights = val_loss, epoch, student.get_weights()
            left = (opts["epochs"] - epoch) * (time.perf_counter() - t0) / epoch  # at most: early stopping cuts it
            job.progress(f"epoch {epoch}/{opts['epochs']}, loss {loss:.4f}, held-out {val_loss:.4f}, "
                         f"at most ~{left:.0f} s left")
            print(f"distill: epoch {epoch}/{opts['epochs']} loss {loss:.4f} val_loss {val_loss:.4f}", flush=True)
            if epoch - best_epoch >= opts["patience"]:
                break
        student.set_weights(best_weights)
        student.save(job.out / self.FILE)
        job.progress(None)
        details = {"teacher_params": teacher_params, "student_params": student_params,
                   "student": "file" if opts["student"] else f"width {opts['width']:g}",
                   "loss": {"teacher_outputs": kinds[0], "student_outputs": kinds[1],
                            "distillation": "MSE to the model's outputs" if task == "regression" else
                            "KL of temperature-softened softmax x T^2"},
                   "temperature": opts["temperature"], "alpha": opts["alpha"], "train_samples": len(train),
                   "validation_samples": len(val), "epochs_run": len(curve), "best_epoch": best_epoch,
                   "best_val_loss": round(best, 6), "curve": curve,
                   "seconds": round(time.perf_counter() - t0, 2)}
        (job.out / "distill.json").write_text(dumps_strict(details, indent=1))
        return details


STEPS = (DistillStep,)
