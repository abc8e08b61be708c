"""BuildState: what the stages of one build learn, in the order they learn it, read by the later stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelpack.console.progress import Reporter
from modelpack.files.arrays import load_outputs
from modelpack.files.cache import Cache
from modelpack.files.zipsizes import ZippedSizes
from modelpack.host.memory import TreeMemory
from modelpack.inputs.data import Samples, TensorSpec
from modelpack.inputs.modelfile import ModelFile
from modelpack.inputs.task import TaskDecision
from modelpack.recipe.models import Recipe
from modelpack.report.build_report import BuildReport
from modelpack.report.records import Selection, StepResult, VariantRecord


@dataclass
class BuildState:
    """One build's facts. The first block is known at the start; each later block is set by one stage.

    A field a stage has not reached yet is None; a stage reads only what the stages before it set.
    """

    recipe_path: Path
    recipe: Recipe
    reporter: Reporter
    cache: Cache
    versions: dict[str, str | None]
    work: Path
    staging: Path | None = None  # the output folder being written; None when only measuring (bench)
    images: bool = False  # build container images for the image targets
    usage: TreeMemory = field(default_factory=TreeMemory)  # peak memory and time of each stage, for the report
    zipped: ZippedSizes = field(default_factory=ZippedSizes)  # model files' zipped sizes, deflated early
    # load_model
    model: ModelFile = None  # type: ignore[assignment]
    arrays: dict | None = None
    task: TaskDecision = None  # type: ignore[assignment]  # the task scored; the recipe's copy says it too
    # inspect
    info: dict = field(default_factory=dict)
    scored: int = 0
    network: ModelFile = None  # type: ignore[assignment]  # the model run on numbers: `model`, or a text model's
    #                            layers after its vocabulary lookup
    # prepare_data
    samples: Samples = None  # type: ignore[assignment]
    eval_npz: Path = None  # type: ignore[assignment]
    calib_npz: Path = None  # type: ignore[assignment]
    train_npz: Path | None = None
    data_sha: dict[str, str] = field(default_factory=dict)  # data name -> digest, for cache keys
    baseline_dir: Path = None  # type: ignore[assignment]
    # prune / keras3 port: the model every variant is converted from
    source: ModelFile = None  # type: ignore[assignment]
    source_baseline_dir: Path | None = None  # the pruned model's own outputs
    prune_details: dict | None = None
    port_note: str | None = None
    precision: dict | None = None  # a mixed-precision model's float32 copy: its policy and how close it came
    distill: dict | None = None  # the distill step's details (parameters, training curve)
    student: ModelFile | None = None  # the distilled student, source of the distilled-V variants
    student_baseline_dir: Path | None = None  # the student's own outputs on the evaluation samples
    # convert
    converted: dict[str, StepResult] = field(default_factory=dict)  # variant name -> its step's result
    # measure
    variants: list[VariantRecord] = field(default_factory=list)  # keras first, then the recipe's variants
    # judge (searched INT8 variants join `variants`)
    search: list[dict] = field(default_factory=list)
    selection: Selection | None = None
    # memory
    memory: dict | None = None
    # split
    split: dict | None = None
    split_outputs: Path | None = None
    # report
    report: BuildReport | None = None

    @property
    def origin(self) -> str:
        """The recipe file as errors name it."""
        return str(self.recipe_path)

    @property
    def inputs(self) -> list[TensorSpec]:
        """The model's inputs, as the inspect stage found them."""
        return [TensorSpec.from_json(t) for t in self.info["inputs"]]

    @property
    def outputs(self) -> list[TensorSpec]:
        """The model's outputs, as the inspect stage found them."""
        return [TensorSpec.from_json(t) for t in self.info["outputs"]]

    def baseline_outputs(self) -> list[np.ndarray]:
        """The float model's outputs on the evaluation samples: what fidelity is measured against."""
        return load_outputs(self.baseline_dir / "outputs.npz")

    def source_outputs(self) -> list[np.ndarray]:
        """The outputs of the model variants are converted from (the pruned one when pruning)."""
        folder = self.baseline_dir if self.source_baseline_dir is None else self.source_baseline_dir
        return load_outputs(folder / "outputs.npz")

    def student_outputs(self) -> list[np.ndarray]:
        """The distilled student's outputs on the evaluation samples (what its float32 conversions reproduce)."""
        assert self.student_baseline_dir is not None, "the source stage sets it when the recipe distils"
        return load_outputs(self.student_baseline_dir / "outputs.npz")

    def probe_spec(self, path: Path, fmt: str, out: str | None, **overrides) -> dict:
        """What a probe process needs to time and run one model file on the evaluation samples."""
        ms = self.recipe.measure
        return {
            "model": str(path), "kind": fmt, "format": self.network.format, "data": str(self.eval_npz),
            "inputs": [t.name for t in self.inputs], "threads": ms.latency.threads,
            "warmup": ms.latency.warmup, "runs": ms.latency.runs, "batch": ms.latency.batch,
            "eval_batch": 64 if fmt == "keras" else 1, "out": out,
            "trust_code": self.recipe.model.trust_code, "custom_objects": self.recipe.model.custom_objects,
            **overrides,
        }
