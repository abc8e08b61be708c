"""The base class of pipeline steps; a step runs inside the worker process, file in, file out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from modelpack.recipe.models import Recipe


PROGRESS = "progress.json"  # what a long step is doing, rewritten as it goes; the build's progress line shows it


@dataclass
class StepJob:
    """Everything a step needs, serialisable to JSON for the worker process."""

    step: str
    model_path: str
    model_format: str
    out_dir: str
    options: dict = field(default_factory=dict)
    trust_code: bool = False
    custom_objects: str | None = None
    dep_dir: str | None = None
    data: dict = field(default_factory=dict)  # split name -> .npz path
    shapes: dict | None = None  # the recipe's data.shapes: free input dimensions fixed by input name

    @property
    def out(self) -> Path:
        return Path(self.out_dir)

    @property
    def large(self) -> bool:
        """A model of limits.LARGE_MODEL_BYTES or more: its variants take the bounded-memory routes."""
        from modelpack import limits
        from modelpack.files.output import tree_bytes

        return tree_bytes(Path(self.model_path)) >= limits.LARGE_MODEL_BYTES

    def progress(self, text: str | None) -> None:
        """Tell the build what the step is doing (None: done); one line, replaced by the next."""
        path = self.out / PROGRESS
        if text is None:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"text": text}))
        tmp.replace(path)  # the build never reads half a file


RESULT = "result.json"  # what a job leaves in its out_dir when it ends: ok, details or the error

class Step:
    """One unit of work. Variant steps produce a model file named FILE in the job's out_dir."""

    NAME: ClassVar[str]
    FORMAT: ClassVar[str] = ""
    QUANTIZATION: ClassVar[str] = "none"
    FILE: ClassVar[str] = ""
    REQUIRES: ClassVar[str | None] = None  # a variant whose output this step consumes
    # For a model of limits.LARGE_MODEL_BYTES or more: a variant whose output this step starts from when the build
    # converts that variant anyway (the job then gets it as its dep and the model's input names as options["inputs"]).
    REUSES: ClassVar[str | None] = None
    USES_CALIBRATION: ClassVar[bool] = False
    USES_EVALUATION: ClassVar[bool] = False  # the evaluation samples
    USES_BASELINE: ClassVar[bool] = False  # the float model's outputs on the evaluation samples
    USES_TRAINING: ClassVar[bool] = False  # the labelled training samples (fine-tuning)

    def options(self, recipe: Recipe) -> dict:
        """The recipe options this step depends on (part of its cache key)."""
        return {}

    def run(self, job: StepJob, ctx: Any) -> dict:
        """Do the work; `ctx` is the worker's per-process state (loaded model). Return details for the report."""
        raise NotImplementedError
