"""Targets build after the targets they declare they need or use, whatever order the recipe or registry has."""

from __future__ import annotations

import pytest

from modelpack.recipe.targets import TargetSpecBase
from modelpack.targets import TARGETS
from modelpack.targets import catalog as _catalog  # noqa: F401  (registers every target)
from modelpack.targets.base import Target, build_order


def spec(kind: str) -> TargetSpecBase:
    return TARGETS.get(kind).Spec(kind=kind)


def registry() -> dict[str, type[Target]]:
    return {name: TARGETS.get(name) for name in TARGETS.names()}


def test_the_catalog_declares_the_layer_hand_off():
    assert TARGETS.get("lambda-split").NEEDS == ("lambda-layer",)
    assert TARGETS.get("lambda-function").USES == ("lambda-layer",)
    for name in TARGETS.names():
        target = TARGETS.get(name)
        assert set(target.NEEDS) | set(target.USES) <= set(TARGETS.names()), name


def test_a_function_listed_first_builds_after_its_layer():
    kinds = [s.kind for s in build_order([spec("lambda-split"), spec("lambda-function"), spec("lambda-layer")],
                                         registry())]
    assert kinds == ["lambda-layer", "lambda-function", "lambda-split"]


def test_dependencies_win_over_registration_order():
    """A registry that lists the consumer first still builds the provider first; other targets keep its order."""
    classes = registry()
    reordered = {k: classes[k] for k in ("azure-image", "lambda-split", "lambda-function", "azure-functions",
                                         "lambda-layer", "lambda-image")}
    specs = [spec(k) for k in ("lambda-layer", "lambda-function", "azure-functions", "lambda-split", "azure-image")]
    kinds = [s.kind for s in build_order(specs, reordered)]
    assert kinds == ["azure-image", "azure-functions", "lambda-layer", "lambda-split", "lambda-function"]


def test_without_the_used_target_the_user_builds_alone():
    assert [s.kind for s in build_order([spec("lambda-function")], registry())] == ["lambda-function"]


def test_targets_waiting_for_each_other_are_refused():
    class A(Target):
        NAME, NEEDS = "a", ("b",)

    class B(Target):
        NAME, NEEDS = "b", ("a",)

    with pytest.raises(ValueError, match="wait for each other: a, b"):
        build_order([TargetSpecBase.model_construct(kind="a"), TargetSpecBase.model_construct(kind="b")],
                    {"a": A, "b": B})
