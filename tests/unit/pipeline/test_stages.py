"""The build's stage list: each stage reads only what is given or written before it, and its code agrees."""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import replace

from modelpack.pipeline.build import GIVEN, MEASURE_ONLY, STAGES
from modelpack.pipeline.stage import field_names, order_errors
from modelpack.pipeline.state import BuildState

FIELDS = field_names(BuildState)
# BuildState helpers that read fields on the stage's behalf: helper -> the fields it reads.
HELPERS = {"origin": ("recipe_path",), "inputs": ("info",), "outputs": ("info",),
           "baseline_outputs": ("baseline_dir",), "source_outputs": ("baseline_dir", "source_baseline_dir"),
           "probe_spec": ("recipe", "network", "eval_npz", "info")}


def test_every_stage_reads_what_earlier_stages_write():
    assert set(GIVEN) <= set(FIELDS)
    assert order_errors(STAGES, GIVEN, FIELDS) == []


def test_a_stage_moved_before_its_inputs_is_caught():
    names = [s.name for s in STAGES]
    swapped = list(STAGES)
    i, j = names.index("convert"), names.index("measure")
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert "stage measure reads converted before any stage writes it" in order_errors(swapped, GIVEN, FIELDS)
    typo = [replace(STAGES[0], writes=("modle",))]
    assert "stage model names modle, which is not a BuildState field" in order_errors(typo, GIVEN, FIELDS)


def test_stages_are_named_and_explained_once():
    names = [s.name for s in STAGES]
    assert len(set(names)) == len(names)
    assert all(s.purpose and s.purpose[0].islower() and not s.purpose.endswith(".") for s in STAGES)
    assert MEASURE_ONLY == STAGES[:-1] and STAGES[-1].name == "package"


def _state_access(func, seen: set) -> tuple[set, set]:
    """(fields read, fields assigned) through `state.<field>` in `func` and the same-module functions it calls."""
    if func in seen:
        return set(), set()
    seen.add(func)
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    module = inspect.getmodule(func)
    reads, writes = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "state":
            if isinstance(node.ctx, ast.Store):
                writes.add(node.attr)
            elif node.attr in FIELDS:
                reads.add(node.attr)
            else:
                reads.update(HELPERS.get(node.attr, ()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            callee = getattr(module, node.func.id, None)
            if inspect.isfunction(callee) and callee.__module__ == module.__name__:
                more_reads, more_writes = _state_access(callee, seen)
                reads |= more_reads
                writes |= more_writes
    return reads, writes


def test_stage_code_touches_only_what_it_declares():
    """The fields each stage's code reads (besides those given at the start) and assigns are the ones it
    declares; reads through the job runner (data files, the source model) are declared by hand."""
    for stage in STAGES:
        reads, writes = _state_access(stage.run, set())
        assert writes <= set(stage.writes), f"{stage.name} assigns undeclared {writes - set(stage.writes)}"
        undeclared = reads - set(stage.reads) - set(stage.writes) - set(GIVEN)
        assert not undeclared, f"{stage.name} reads undeclared {undeclared}"
