"""Steps that read the source model: its signature and parameters, and the float baseline's outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpack.files.jsonio import dumps_strict
from modelpack.steps.base import Step, StepJob


class InspectStep(Step):
    """Load the model in safe mode and record its inputs, outputs and parameter count."""

    NAME = "inspect"
    FILE = "info.json"

    def run(self, job: StepJob, ctx: Any) -> dict:
        loaded = ctx.model(job)
        info = {"inputs": loaded.inputs, "outputs": loaded.outputs, "params": loaded.params,
                "vocabularies": loaded.vocabularies}
        (job.out / self.FILE).write_text(dumps_strict(info, indent=1))
        return info


class BaselineStep(Step):
    """Run the float model on the evaluation samples: the reference every variant is compared with."""

    NAME = "baseline"
    FILE = "outputs.npz"
    USES_EVALUATION = True

    def run(self, job: StepJob, ctx: Any) -> dict:
        loaded = ctx.model(job)
        with np.load(job.data["evaluation"]) as npz:
            xs = [npz[f"in_{i}"] for i in range(len(loaded.inputs))]
        outs = loaded.predict(xs)
        np.savez(job.out / self.FILE, **{f"out_{i}": o for i, o in enumerate(outs)})
        return {}


STEPS = (InspectStep, BaselineStep)
