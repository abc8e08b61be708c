"""The model's task as the recipe states it: which output the task scores."""

from __future__ import annotations

from modelpack.errors import InputError


def scored_output(name: str | None, outputs: list[dict], origin: str) -> int:
    """Index of the output `task_output` names (the first when unset); a name the model lacks is refused."""
    names = [o["name"] for o in outputs]
    if name is None:
        return 0
    if name not in names:
        raise InputError(
            f"{origin}: task_output is '{name}', but the model's outputs are {', '.join(names)}. "
            "Name the output the task scores (`modelpack inspect MODEL` lists them), or remove task_output "
            "to score the first one."
        )
    return names.index(name)

