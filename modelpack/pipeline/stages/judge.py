"""The judge stage: budgets on every variant, the accuracy-aware INT8 search, and the selection."""

from __future__ import annotations

from modelpack.judge import budgets as budget_checks
from modelpack.judge.select import select
from modelpack.pipeline.jobs import Job, run_step
from modelpack.pipeline.stages.measure import measure_one, set_accuracy_drop
from modelpack.pipeline.state import BuildState
from modelpack.recipe.models import Budgets
from modelpack.report.records import Selection, VariantRecord
from modelpack.steps import STEPS
from modelpack.steps.int8_mixed import MIXED
from modelpack.targets import room

ACCURACY_BUDGETS = ("max_accuracy_drop", "min_agreement", "max_mae_increase")


def check_budgets(variant: VariantRecord, budgets: Budgets, rooms: list[tuple[str, int]] = ()) -> None:
    """Set the variant's `budgets` rows (the recipe's, then what each target can carry) and whether it passed."""
    variant.budgets = budget_checks.check(variant, budgets)
    if variant.name != "keras" and variant.ok:
        variant.budgets += room.rows(variant.size_bytes, list(rooms))
    variant.budgets_passed = variant.ok and all(b["passed"] for b in variant.budgets)


def run(state: BuildState) -> None:
    """Check every variant's budgets, search INT8 variants that miss an accuracy budget (the searched variants
    join `state.variants`), then select among all of them."""
    variants = state.variants
    rooms = room.rooms(state.recipe.targets)
    for v in variants:
        check_budgets(v, state.recipe.budgets, rooms)
    state.search = search_int8(state, variants)  # reads the plain INT8 variants' budget rows set above
    chosen, reason, closest = select(variants, state.recipe.select)
    named = chosen or closest
    rows = next((v.budgets for v in variants if v.name == named), []) if named else []
    state.selection = Selection(chosen, reason, closest, rows, misfit_notes(variants))


def misfit_notes(variants: list[VariantRecord]) -> list[str]:
    """A note for each variant that meets the recipe's own budgets but that a target cannot carry."""
    def misfits(v: VariantRecord) -> list[str]:
        return [b["name"].removeprefix("fits ") for b in v.budgets if b["name"].startswith("fits ") and not b["passed"]]

    built = [v for v in variants if v.ok and v.name != "keras"]
    fitting = [(v.name, v.size_bytes) for v in built if not misfits(v)]
    return [room.too_big_note(v.name, v.size_bytes, misfits(v), fitting) for v in built
            if misfits(v) and all(b["passed"] for b in v.budgets if not b["name"].startswith("fits "))]


def plain_trial(variant: VariantRecord) -> dict:
    """The plain INT8 variant as the search's trial 0, from its full measurement."""
    return {"trial": 0, "float_nodes": [], "accuracy": variant.accuracy, "accuracy_drop": variant.accuracy_drop,
            "agreement": variant.fidelity.get("agreement"), "size_bytes": variant.size_bytes,
            "p50_ms": variant.p50_ms,
            "passed": all(b["passed"] for b in variant.budgets if b["name"] in ACCURACY_BUDGETS),
            "measured": "full measurement"}


def search_int8(state: BuildState, variants: list[VariantRecord]) -> list[dict]:
    """A mixed variant for each INT8 variant that misses an accuracy budget; one record per INT8 variant.

    Each plain variant must carry its budget rows already; a searched variant is measured, checked against
    the budgets and appended to `variants`.
    """
    recipe = state.recipe
    settings = recipe.optimize.search
    accuracy_budgets = {n for n in ACCURACY_BUDGETS if getattr(recipe.budgets, n) is not None}
    records = []
    for base, name in MIXED.items():
        plain = next((v for v in variants if v.name == base and v.ok), None)
        if plain is None:
            continue
        missed = [b["name"] for b in plain.budgets if b["name"] in accuracy_budgets and not b["passed"]]
        record = {"variant": base, "result": None, "passed": None, "trials": [plain_trial(plain)]}
        if not accuracy_budgets:
            record["outcome"] = ("not needed: the recipe sets no accuracy budget (max_accuracy_drop, min_agreement, "
                                 "max_mae_increase)")
        elif not missed:
            record.update(passed=True, outcome=f"ended at once: plain {base} already meets "
                                               f"{' and '.join(sorted(accuracy_budgets))}")
        elif not settings.enabled:
            record["outcome"] = f"off (optimize.search.enabled: false); {base} misses {', '.join(missed)}"
        else:
            mixed = _search_one(state, name, missed, base, record)
            if mixed is not None:
                set_accuracy_drop(mixed, variants[0])
                check_budgets(mixed, recipe.budgets)
                variants.append(mixed)
        records.append(record)
    return records


def _search_one(state: BuildState, name: str, missed: list[str], base: str, record: dict) -> VariantRecord | None:
    """Run the search step `name`, fill in the record, and return the measured result (None if it failed)."""
    step = STEPS.get(name)
    options = {**step().options(state.recipe), "inputs": [t.name for t in state.inputs], "scored": state.scored}
    res = run_step(state, Job(name, name, options, step.REQUIRES))
    if not res.ok:
        record["outcome"] = f"the search failed: {res.error}"
        return None
    d = res.details
    floats = len(d["float_nodes"])
    record.update(result=name, passed=d["passed"], trials=d["trials"], setting=d["setting"],
                  float_nodes=d["float_nodes"], sensitivity=d["sensitivity"], stopped=d["stopped"])
    int16 = d["setting"].get("activations") == "int16"
    how = (f"{floats} operation(s) kept in float" if floats else
           "int16 activations and int8 weights (16x8)" if int16 else "calibration settings only")
    record["outcome"] = (
        f"{base} missed {', '.join(missed)}; trial {d['chosen_trial']} meets the accuracy budgets "
        f"with {how} ({len(d['trials'])} trial(s))" if d["passed"] else
        f"{base} missed {', '.join(missed)}; no trial met the accuracy budgets in {len(d['trials'])} "
        f"trial(s) ({d['stopped'] or 'search space exhausted'}); {name} is the closest trial")
    mixed = measure_one(state, name, step, res, state.baseline_outputs(), state.source_outputs())
    mixed.details = {k: d[k] for k in ("base_variant", "setting", "float_nodes", "passed")}
    return mixed
