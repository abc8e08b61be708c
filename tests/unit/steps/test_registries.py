"""The recipe's literal lists (kept literal so reading a recipe imports no step) agree with the registries."""

from __future__ import annotations

from modelpack.judge.select import POLICIES, REASONS
from modelpack.recipe.models import SELECT_POLICIES, VARIANTS
from modelpack.steps import STEPS
from modelpack.steps.int8_mixed import MIXED


def test_recipe_variants_are_the_registered_variant_steps():
    """A variant a recipe may ask for is a registered step that writes a model file in a serving format; the
    searched INT8 variants are made by the search, not asked for."""
    searched = set(MIXED.values())
    registered = tuple(n for n in STEPS.names() if STEPS.get(n).FORMAT and n not in searched)
    assert VARIANTS == registered
    assert set(MIXED) <= set(VARIANTS)
    for name in VARIANTS:
        requires = STEPS.get(name).REQUIRES
        assert requires is None or requires in VARIANTS


def test_recipe_select_policies_are_the_selection_policies():
    assert SELECT_POLICIES == tuple(POLICIES)
    assert set(REASONS) == set(POLICIES)


def test_recipe_calibrated_variants_are_the_steps_that_read_calibration_samples():
    from modelpack.recipe.models import CALIBRATED

    assert CALIBRATED == tuple(n for n in VARIANTS if STEPS.get(n).USES_CALIBRATION)
