"""Pydantic models of a recipe: every field typed, described, and strict about unknown keys."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from modelpack import limits
from modelpack.recipe.base import Strict
from modelpack.recipe.base import resolve_path as _resolve
from modelpack.recipe.serving import ServingSpec
from modelpack.recipe.targets import TargetSpec

VARIANTS = (
    "tflite-fp32",
    "tflite-dynamic",
    "tflite-fp16",
    "tflite-int8",
    "tflite-16x8",
    "onnx-fp32",
    "onnx-dynamic",
    "onnx-int8",
)
# What a recipe builds when it lists no variants: every variant but tflite-16x8, whose int16 kernels are slower
# than int8 and fp32 on most CPUs (it is asked for by name, for activations that do not survive int8).
DEFAULT_VARIANTS = tuple(v for v in VARIANTS if v != "tflite-16x8")
# The variants whose converter reads the calibration samples (checked against each step's USES_CALIBRATION).
CALIBRATED = ("tflite-int8", "tflite-16x8", "onnx-int8")
VariantName = Literal[VARIANTS]  # type: ignore[valid-type]
SELECT_POLICIES = ("smallest", "fastest", "coldest-start", "most-accurate")
_CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ModelSpec(Strict):
    """The trained model to package."""

    path: str = Field(description="Keras 3 .keras, tf-keras .keras/.h5, or a SavedModel directory.")
    trust_code: bool = Field(
        False,
        description="Allow Lambda layers and custom objects. Off by default: such code runs at load time.",
    )
    custom_objects: str | None = Field(
        None, description="Importable module whose CUSTOM_OBJECTS dict names custom layers (needs trust_code)."
    )

    @field_validator("path")
    @classmethod
    def _exists(cls, v: str, info: ValidationInfo) -> str:
        return _resolve(v, info)  # type: ignore[return-value]

    @model_validator(mode="after")
    def _custom_needs_trust(self) -> ModelSpec:
        if self.custom_objects and not self.trust_code:
            raise ValueError("custom_objects requires trust_code: true")
        return self


Count = Annotated[float, Field(gt=0)]
NameList = Annotated[list[str], Field(min_length=1)]  # an empty list names no array to feed the model


class TrainArrays(Strict):
    """Arrays used only for fine-tuning (pruning)."""

    inputs: str | NameList = Field(description="Array name(s) holding the training inputs.")
    labels: str = Field(description="Array name holding the training labels.")


class DataSpec(Strict):
    """Sample data for calibration, evaluation and fine-tuning."""

    path: str | None = Field(
        None, description="A .npz file of named arrays, or module:function returning a dict of arrays."
    )
    inputs: str | NameList = Field(
        "x", description="Array name(s) fed to the model inputs, in the order of the model's inputs."
    )
    labels: str | None = Field("y", description="Array name of the labels; null for unlabeled data.")
    calibration: Count = Field(200, description="Samples for INT8 calibration: a count, or a fraction if < 1.")
    evaluation: Count = Field(400, description="Samples for accuracy and fidelity: a count, or a fraction if < 1.")
    train: TrainArrays | None = Field(
        None, description="Separate arrays for fine-tuning; default: the samples left after the other splits."
    )
    seed: int = Field(0, description="Seed of the shuffle that draws the splits.")
    timeout_s: float = Field(
        300, gt=0, le=86_400,
        description="Seconds a module:function data.path may run (in its own process) before it is stopped.",
    )
    synthetic: bool = Field(
        False, description="No data file: random inputs for fidelity and latency only (no accuracy)."
    )
    allow_overlap: bool = Field(
        False, description="With too few samples for both, let calibration reuse evaluation samples (INT8 is then "
                           "judged on data it was calibrated on; the build and the report warn). Off: refused.")
    shapes: dict[str, list[Annotated[int, Field(ge=1, le=1_000_000)]]] | None = Field(
        None, description="Per-sample shape of each input with free dimensions (`modelpack inspect MODEL` shows "
                          "them), e.g. {image: [224, 224, 3]}: the variants are converted, measured and served at "
                          "it. Needed with data.synthetic when a dimension is free.")

    @field_validator("path")
    @classmethod
    def _exists(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and _CALLABLE_RE.match(v) and not v.endswith(".npz"):
            return v
        return _resolve(v, info)

    @model_validator(mode="after")
    def _path_or_synthetic(self) -> DataSpec:
        if self.path is None and not self.synthetic:
            raise ValueError("give data.path, or set data.synthetic: true to measure without data")
        if self.path is not None and self.synthetic:
            raise ValueError("data.path and data.synthetic: true exclude each other")
        return self


class PruneSpec(Strict):
    """Magnitude pruning with tensorflow-model-optimization, then fine-tuning."""

    final_sparsity: float = Field(gt=0, lt=1, description="Fraction of weights set to zero at the end.")
    initial_sparsity: float = Field(0.0, ge=0, lt=1, description="Sparsity when pruning begins.")
    schedule: Literal["polynomial", "constant"] = Field("polynomial", description="Pruning schedule.")
    epochs: int = Field(2, ge=1, le=1000, description="Fine-tuning epochs.")
    batch_size: int = Field(32, ge=1, description="Fine-tuning batch size.")
    frequency: int = Field(0, ge=0, description="Steps between pruning updates; 0 picks one that reaches the target.")
    m_by_n: Literal["2:4"] | None = Field(None, description="Structured sparsity pattern.")
    loss: str | None = Field(None, description="Keras loss name; default: the model's compiled loss or a task default.")

    @model_validator(mode="after")
    def _order(self) -> PruneSpec:
        if self.initial_sparsity >= self.final_sparsity:
            raise ValueError("initial_sparsity must be smaller than final_sparsity")
        return self


class DistillSpec(Strict):
    """Knowledge distillation: a smaller student trained to match the model (and the labels) on the training
    split; every requested variant V is then also built from the student, as distilled-V."""

    student: str | None = Field(
        None, description="A Keras model file (relative to the recipe) with the model's inputs and outputs, trained "
                          "from its current weights; give this or width.")
    width: float | None = Field(
        None, gt=0, lt=1, description="Derive the student from the model: the same layers with this fraction of the "
                                      "filters and units (the output layer keeps its units), freshly initialised.")
    temperature: float = Field(4.0, gt=0, le=100, description="Softmax temperature of the distillation loss.")
    alpha: float = Field(
        0.7, ge=0, le=1, description="Weight of the distillation loss (matching the model); 1 - alpha weighs the "
                                     "loss against the labels.")
    epochs: int = Field(30, ge=1, le=1000, description="Training epochs at most.")
    batch_size: int = Field(32, ge=1, le=65_536, description="Training batch size.")
    patience: int = Field(5, ge=1, le=1000, description="Epochs without a better validation loss before stopping; "
                                                         "the best epoch's weights are kept.")
    validation: float = Field(0.1, gt=0, lt=1, description="Fraction of the training split held out for early "
                                                           "stopping.")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate.")

    @field_validator("student")
    @classmethod
    def _exists(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _resolve(v, info)

    @model_validator(mode="after")
    def _one_student(self) -> DistillSpec:
        if (self.student is None) == (self.width is None):
            raise ValueError("give exactly one of student (a Keras model file) and width (0 < width < 1, a student "
                             "derived from the model)")
        return self


CalibrationMethod = Literal["minmax", "entropy", "percentile"]


class Int8Spec(Strict):
    """Full-integer quantization settings."""

    io: Literal["float", "int8"] = Field("float", description="Model input/output type of tflite-int8.")
    calibration_method: CalibrationMethod = Field(
        "minmax", description="ONNX Runtime calibration method for onnx-int8."
    )
    per_channel: bool = Field(True, description="Per-channel weight quantization for onnx-int8.")


class SearchSpec(Strict):
    """Accuracy-aware INT8: when an INT8 variant misses max_accuracy_drop or min_agreement, search calibration
    settings, then keep the most sensitive activations in float, fewest first, until the budgets hold."""

    enabled: bool = Field(True, description="Search when plain INT8 misses an accuracy budget.")
    max_trials: int = Field(12, ge=1, le=500, description="Quantized models tried per INT8 variant, at most.")
    max_minutes: float = Field(10, gt=0, le=1440, description="Time limit per INT8 variant's search.")
    calibration_methods: list[CalibrationMethod] = Field(
        default_factory=lambda: ["minmax", "entropy", "percentile"], min_length=1,
        description="ONNX Runtime calibration methods to try (TFLite always calibrates min/max).",
    )
    per_channel: list[bool] = Field(
        default_factory=lambda: [True, False], min_length=1, description="Per-channel weight settings to try."
    )
    try_16x8: bool = Field(
        True, description="tflite-int8: also try int16 activations with int8 weights (tflite-16x8's setting) after "
                          "the calibration settings, before keeping operations in float.")


class SplitSpec(Strict):
    """Cut the selected variant's model into parts at single-tensor cut points (`modelpack inspect MODEL` lists
    them); give exactly one of parts, at, max_part_mb."""

    parts: int | None = Field(None, ge=2, le=64, description="Number of parts, balanced by parameter bytes.")
    at: list[str] | None = Field(None, min_length=1, description="Layer names to cut after, in model order.")
    max_part_mb: float | None = Field(None, gt=0, description="Fewest parts with every part's parameters under this.")

    @model_validator(mode="after")
    def _one_mode(self) -> SplitSpec:
        given = [n for n in ("parts", "at", "max_part_mb") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of parts, at, max_part_mb (got {', '.join(given) or 'none'})")
        return self


class OptimizeSpec(Strict):
    """Which variants to build and how."""

    variants: list[VariantName] = Field(
        default_factory=lambda: list(DEFAULT_VARIANTS), min_length=1,
        description="Variants to build and measure; default: all but tflite-16x8."
    )
    prune: PruneSpec | None = Field(None, description="Prune before converting; off unless given.")
    distill: DistillSpec | None = Field(
        None, description="Also build every variant from a distilled student (distilled-V); off unless given.")
    int8: Int8Spec = Field(default_factory=Int8Spec, description="INT8 quantization settings.")
    search: SearchSpec = Field(default_factory=SearchSpec, description="Accuracy-aware INT8 search.")
    split: SplitSpec | None = Field(None, description="Split the selected model into parts; off unless given.")
    opset: int = Field(17, ge=13, le=21, description="ONNX opset for tf2onnx.")

    @property
    def calibrates(self) -> bool:
        """Whether a variant (or the INT8 search) reads calibration samples."""
        return any(v in CALIBRATED for v in self.variants)

    @model_validator(mode="after")
    def _distill_alone(self) -> OptimizeSpec:
        if self.distill is not None and self.prune is not None:
            raise ValueError("optimize.distill and optimize.prune exclude each other: the student is trained from the "
                             "unpruned model; drop one of them")
        if self.distill is not None and self.split is not None:
            raise ValueError("optimize.split cuts the model the variants come from, not a distilled student; drop "
                             "optimize.split or optimize.distill")
        return self

    @field_validator("variants")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"variants listed twice: {', '.join(dupes)}")
        return v


class LatencySpec(Strict):
    """Warm latency measurement."""

    warmup: int = Field(20, ge=0, le=100_000, description="Untimed runs before measuring.")
    runs: int = Field(200, ge=5, le=1_000_000, description="Timed runs.")
    threads: int = Field(1, ge=1, le=256, description="Intra-op threads of the runtime.")
    batch: int = Field(1, ge=1, le=4096, description="Batch size of each run.")


class ColdStartSpec(Strict):
    """Cold start measurement: fresh process, import, load, first inference."""

    runs: int = Field(5, ge=1, le=100, description="Fresh processes; the report gives the median.")


class MemoryTuningSpec(Strict):
    """Latency and cost of the selected variant at each Lambda memory size (CPU share emulated)."""

    sizes_mb: list[Annotated[int, Field(ge=128, le=10_240)]] = Field(
        default_factory=lambda: [256, 512, 1024, 1769, 2048, 3008], min_length=1, description="Memory sizes to try."
    )
    runs: int = Field(100, ge=10, le=100_000, description="Timed runs per size.")
    cold_runs: int = Field(2, ge=1, le=20, description="Cold starts per size.")
    headroom_mb: int = Field(64, ge=0, le=4096, description="Memory kept free above the measured peak RSS.")
    balanced_weight: float = Field(0.5, ge=0, le=1, description="Weight of cost (vs speed) in the balanced pick.")
    prices: dict[Literal["x86_64_per_gb_s", "arm64_per_gb_s", "per_request"], Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="Override Lambda prices (USD); default: us-east-1 list prices."
    )


class MeasureSpec(Strict):
    """How variants are measured."""

    latency: LatencySpec = Field(default_factory=LatencySpec, description="Warm latency in one process.")
    cold_start: ColdStartSpec = Field(default_factory=ColdStartSpec, description="Cold start in fresh processes.")
    top_k: int | None = Field(None, ge=2, le=1000, description="Also report top-k accuracy (classification).")
    memory: MemoryTuningSpec | None = Field(None, description="Memory-size and cost tuning; off unless given.")


NonNeg = Annotated[float, Field(ge=0)]


class Budgets(Strict):
    """Limits a variant must meet to be selected; absent means not enforced."""

    max_accuracy_drop: NonNeg | None = Field(
        None, description="Largest allowed accuracy drop vs the Keras baseline (0.01 = 1 point). With task: "
                          "regression, where accuracy is the negative MAE, the MAE increase in label units.")
    max_mae_increase: NonNeg | None = Field(
        None, description="Regression: largest allowed increase of the mean absolute error vs the Keras baseline, "
                          "in the labels' units.")
    min_agreement: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="Smallest top-1 agreement with the float model."
    )
    max_model_mb: NonNeg | None = Field(None, description="Model file size, MB (10^6 bytes).")
    max_zip_mb: NonNeg | None = Field(None, description="Zipped model size, MB.")
    max_p50_ms: NonNeg | None = Field(None, description="Median warm latency, ms.")
    max_p95_ms: NonNeg | None = Field(None, description="95th percentile warm latency, ms.")
    max_p99_ms: NonNeg | None = Field(None, description="99th percentile warm latency, ms.")
    max_cold_start_ms: NonNeg | None = Field(None, description="Median cold start (import + load + first run), ms.")
    max_peak_rss_mb: NonNeg | None = Field(None, description="Peak resident memory of the cold-start process, MB.")


class Recipe(Strict):
    """A modelpack recipe."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Build name; used in output paths.")
    model: ModelSpec = Field(description="The trained model to package.")
    data: DataSpec = Field(default_factory=lambda: DataSpec(synthetic=True), description="Sample data.")
    task: str | None = Field(
        None,
        description="classification, regression, or module:function computing a score (higher is better); "
                    "default: inferred from the labels (whole numbers in few classes: classification, other "
                    "numbers: regression), and the build says what it inferred.",
    )
    task_output: str | None = Field(
        None, pattern=r"^\S.{0,127}$",
        description="Name of the model output that `task` scores and that top_k ranks (see `modelpack inspect "
                    "MODEL`); default: the first output. Fidelity is reported for every output.",
    )
    optimize: OptimizeSpec = Field(default_factory=OptimizeSpec, description="Which variants to build and how.")
    measure: MeasureSpec = Field(default_factory=MeasureSpec, description="How variants are measured.")
    budgets: Budgets = Field(default_factory=Budgets, description="Limits a variant must meet to be selected.")
    select: Literal[SELECT_POLICIES] = Field("fastest", description="How the winner is chosen among passing variants.")  # type: ignore[valid-type]
    targets: list[TargetSpec] = Field(default_factory=list, description="Artifacts to write for the winner.")
    serving: ServingSpec = Field(default_factory=ServingSpec, description="Request formats the handlers accept.")

    @field_validator("task")
    @classmethod
    def _task(cls, v: str | None) -> str | None:
        if v is None or v in ("classification", "regression") or _CALLABLE_RE.match(v):
            return v
        raise ValueError(f"'{v}' is not classification, regression, or module:function")

    @model_validator(mode="after")
    def _budgets_fit_the_task(self) -> Recipe:
        if self.task == "regression" and self.budgets.min_agreement is not None:
            raise ValueError("budgets.min_agreement compares top-1 classes, which task: regression does not have; "
                             "limit the error with budgets.max_mae_increase")
        if self.task not in (None, "regression") and self.budgets.max_mae_increase is not None:
            raise ValueError(f"budgets.max_mae_increase limits a regression error, but task is {self.task}")
        return self

    @model_validator(mode="after")
    def _split_target_needs(self) -> Recipe:
        kinds = {t.kind for t in self.targets}  # type: ignore[attr-defined]
        if "lambda-split" in kinds and self.optimize.split is None:
            raise ValueError("the lambda-split target packages a split model: add optimize.split (parts, at or max_part_mb)")
        if "lambda-split" in kinds and "lambda-layer" not in kinds:
            raise ValueError("the lambda-split target runs on the runtime of a lambda-layer target: add one")
        snap = any(getattr(t, "snapstart", False) for t in self.targets if t.kind == "lambda-function")  # type: ignore[attr-defined]
        old = [t.python for t in self.targets if t.kind == "lambda-layer"  # type: ignore[attr-defined]
               and tuple(int(n) for n in t.python.split(".")) < limits.LAMBDA_SNAPSTART_MIN_PYTHON]  # type: ignore[attr-defined]
        if snap and old:
            raise ValueError(f"snapstart needs Lambda's python3.12 or later, but the lambda-layer target is built for "
                             f"python{old[0]}; set its python to 3.12 or later, or drop snapstart")
        return self

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, v: list[BaseModel]) -> list[BaseModel]:
        seen: set[str] = set()
        for t in v:
            key = t.identity()  # type: ignore[attr-defined]
            if key in seen:
                raise ValueError(f"target {key} is listed twice")
            seen.add(key)
        return v

__all__ = ["Recipe", "VARIANTS", "DEFAULT_VARIANTS", "SELECT_POLICIES", "TargetSpec"]
