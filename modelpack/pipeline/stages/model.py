"""The model stage: detect the model file's format by content, refuse unsafe code, record its identity, and
read the data before TensorFlow starts (a bad file or a failing data function is reported in a second)."""

from __future__ import annotations

from modelpack.inputs import precheck
from modelpack.pipeline.state import BuildState


def run(state: BuildState) -> None:
    """Check the model file and the data the recipe names (no TensorFlow in this process)."""
    state.model = precheck.check_model(state.recipe, state.origin)
    # Data before TensorFlow starts: a bad file or a failing data function is reported in a second.
    state.arrays = precheck.check_data(state.recipe, state.origin, call_functions=True)

