"""The convert stage: every requested variant (and the variant it requires), each step isolated and cached; with
optimize.distill, each of them again from the distilled student (distilled-V)."""

from __future__ import annotations

from pathlib import Path

from modelpack import limits
from modelpack.pipeline.jobs import Job, run_steps
from modelpack.pipeline.stages.measure import needs_zipped_size
from modelpack.pipeline.state import BuildState
from modelpack.report.records import StepResult
from modelpack.steps import STEPS, distilled, variant_step


def run(state: BuildState) -> None:
    """Run the convert job of every requested variant (and of the variant it requires), from the source model and,
    when there is one, from the distilled student."""
    wanted = list(state.recipe.optimize.variants)
    large = state.source.size_bytes >= limits.LARGE_MODEL_BYTES
    deps = {name: dependency(name, wanted, large) for name in wanted}
    plan: list[str] = []
    for name in wanted:
        dep = deps[name]
        if dep and dep not in plan:
            plan.append(dep)
        if name not in plan:
            plan.append(name)
    jobs = [job(state, n, deps.get(n) or STEPS.get(n).REQUIRES) for n in plan]
    if state.student is not None:
        jobs += [Job(distilled(n), n, STEPS.get(n)().options(state.recipe),
                     distilled(STEPS.get(n).REQUIRES) if STEPS.get(n).REQUIRES else None, source=state.student)
                 for n in plan]
    if large and needs_zipped_size(state, Path(state.network.path), "keras"):  # on the core a converter leaves idle
        state.zipped.start(state.network.path)
    converted = run_steps(state, jobs, finished=(lambda label, res: zip_early(state, label, res)) if large else None,
                          low_memory=True)
    state.converted = {n: converted[n] for n in wanted}
    if state.student is not None:
        state.converted.update({distilled(n): converted[distilled(n)] for n in wanted})


def dependency(name: str, wanted: list[str], large: bool) -> str | None:
    """The variant `name` consumes: the one it requires, or for a large model one it reuses that is converted
    anyway (the float flatbuffer INT8 starts from, instead of converting the model a second time)."""
    step = STEPS.get(name)
    if step.REQUIRES:
        return step.REQUIRES
    return step.REUSES if large and step.REUSES in wanted else None


def job(state: BuildState, name: str, dep: str | None) -> Job:
    options = STEPS.get(name)().options(state.recipe)
    if dep is not None and dep != STEPS.get(name).REQUIRES:
        options = {**options, "inputs": [t.name for t in state.inputs]}
    return Job(name, name, options, dep)


def zip_early(state: BuildState, label: str, res: StepResult) -> None:
    """Start deflating a converted variant's model file while the next conversion runs."""
    if res.ok and res.dir is not None:
        state.zipped.start(res.dir / variant_step(label).FILE)
