"""The model stage: detect the model file's format by content, refuse unsafe code, record its identity, and
read the data before TensorFlow starts (a bad file or a failing data function is reported in a second); decide
the task (inferred from the labels when the recipe has none) and check the labels against it."""

from __future__ import annotations

from modelpack.inputs import precheck
from modelpack.pipeline.state import BuildState


def run(state: BuildState) -> None:
    """Check the model file and the data the recipe names (no TensorFlow in this process); decide the task."""
    state.model = precheck.check_model(state.recipe, state.origin)
    # Data before TensorFlow starts: a bad file or a failing data function is reported in a second.
    state.arrays = precheck.check_data(state.recipe, state.origin, call_functions=True)
    state.task = precheck.decide_task(state.recipe, state.arrays, state.origin)
    if state.task.inferred:
        state.reporter.info(state.task.sentence())
    # Every later reader of the recipe (steps' options, targets' configs) sees the task the build scores.
    state.recipe = state.recipe.model_copy(update={"task": state.task.task})
