"""The convert stage: every requested variant (and the variant it requires), each step isolated and cached."""

from __future__ import annotations

from modelpack.pipeline.jobs import Job, run_steps
from modelpack.pipeline.state import BuildState
from modelpack.steps import STEPS


def run(state: BuildState) -> None:
    """Run the convert job of every requested variant (and of the variant it requires)."""
    wanted = list(state.recipe.optimize.variants)
    plan: list[str] = []
    for name in wanted:
        dep = STEPS.get(name).REQUIRES
        if dep and dep not in plan:
            plan.append(dep)
        if name not in plan:
            plan.append(name)
    jobs = [Job(n, n, STEPS.get(n)().options(state.recipe), STEPS.get(n).REQUIRES) for n in plan]
    converted = run_steps(state, jobs)
    state.converted = {n: converted[n] for n in wanted}

