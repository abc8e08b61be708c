"""The convert stage: every requested variant (and the variant it requires), each step isolated and cached; with
optimize.distill, each of them again from the distilled student (distilled-V)."""

from __future__ import annotations

from modelpack.pipeline.jobs import Job, run_steps
from modelpack.pipeline.state import BuildState
from modelpack.steps import STEPS, distilled


def run(state: BuildState) -> None:
    """Run the convert job of every requested variant (and of the variant it requires), from the source model and,
    when there is one, from the distilled student."""
    wanted = list(state.recipe.optimize.variants)
    plan: list[str] = []
    for name in wanted:
        dep = STEPS.get(name).REQUIRES
        if dep and dep not in plan:
            plan.append(dep)
        if name not in plan:
            plan.append(name)
    jobs = [Job(n, n, STEPS.get(n)().options(state.recipe), STEPS.get(n).REQUIRES) for n in plan]
    if state.student is not None:
        jobs += [Job(distilled(n), n, STEPS.get(n)().options(state.recipe),
                     distilled(STEPS.get(n).REQUIRES) if STEPS.get(n).REQUIRES else None, source=state.student)
                 for n in plan]
    converted = run_steps(state, jobs)
    state.converted = {n: converted[n] for n in wanted}
    if state.student is not None:
        state.converted.update({distilled(n): converted[distilled(n)] for n in wanted})
