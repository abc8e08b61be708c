"""Choosing cut points (modelpack.judge.split_plan): balance, small payloads, and errors that name the fix."""

from __future__ import annotations

import pytest

from modelpack.errors import InputError
from modelpack.judge.split_plan import choose
from modelpack.recipe.models import SplitSpec


def _points(sizes: list[int], tensors: list[int], illegal: set[str] = frozenset()) -> list[dict]:
    """Layers L0..Ln with parameter bytes `sizes`; a cut after Li passes `tensors[i]` bytes."""
    total, before, points = sum(sizes), 0, []
    for i, size in enumerate(sizes[:-1]):
        before += size
        name = f"L{i}"
        points.append({"after": name, "index": i + 1, "legal": name not in illegal, "bytes_before": before,
                       "bytes_after": total - before, "tensor_bytes": tensors[i], "tensor_shape": [None, 1],
                       "why": "" if name not in illegal else "2 tensors cross here (a skip connection spans this point)"})
    return points


def test_parts_balances_parameter_bytes():
    points = _points([10, 10, 10, 10, 10, 10], [1] * 5)
    assert choose(points, SplitSpec(parts=2), "r.yaml") == ["L2"]
    assert choose(points, SplitSpec(parts=3), "r.yaml") == ["L1", "L3"]


def test_among_balanced_plans_the_smaller_payload_wins():
    # Cutting after L1 or L2 gives parts within 5 % of the best balance; L2's tensor is much smaller.
    points = _points([100, 1000, 10, 1000, 100], [5000, 5000, 16, 5000])
    assert choose(points, SplitSpec(parts=2), "r.yaml") == ["L2"]


def test_illegal_at_names_the_nearest_legal_cuts():
    points = _points([10] * 6, [1] * 5, illegal={"L2", "L3"})
    with pytest.raises(InputError) as exc:
        choose(points, SplitSpec(at=["L3"]), "r.yaml")
    assert "at[0]: cannot cut after 'L3'" in exc.value.message and "skip connection" in exc.value.message
    assert "'L1' or 'L4'" in exc.value.message
    with pytest.raises(InputError, match="no layer 'nope'"):
        choose(points, SplitSpec(at=["nope"]), "r.yaml")
    with pytest.raises(InputError, match="in model order"):
        choose(points, SplitSpec(at=["L4", "L1"]), "r.yaml")
    assert choose(points, SplitSpec(at=["L1", "L4"]), "r.yaml") == ["L1", "L4"]


def test_parts_never_use_illegal_cuts_and_too_many_parts_is_an_error():
    points = _points([10] * 6, [1] * 5, illegal={"L1", "L2", "L3"})
    assert choose(points, SplitSpec(parts=3), "r.yaml") == ["L0", "L4"]
    with pytest.raises(InputError, match="at most 3 parts"):
        choose(points, SplitSpec(parts=4), "r.yaml")


def test_max_part_mb_uses_the_fewest_parts():
    points = _points([400_000] * 5, [1] * 4)
    cuts = choose(points, SplitSpec(max_part_mb=0.85), "r.yaml")
    bounds = [0] + [int(c[1:]) + 1 for c in cuts] + [5]
    assert len(cuts) == 2 and all((b - a) * 400_000 <= 850_000 for a, b in zip(bounds, bounds[1:]))
    with pytest.raises(InputError, match="already fits"):
        choose(points, SplitSpec(max_part_mb=5), "r.yaml")
    with pytest.raises(InputError, match="no legal cut between them"):
        choose(points, SplitSpec(max_part_mb=0.3), "r.yaml")


def test_split_spec_takes_exactly_one_mode():
    with pytest.raises(ValueError, match="exactly one of parts, at, max_part_mb"):
        SplitSpec(parts=2, max_part_mb=1)
    with pytest.raises(ValueError):
        SplitSpec()
