"""How much model the recipe's targets can carry, known before anything is built: one budget row per target
with a hard platform limit, so a variant no target can package is never selected, and the note that says what
would carry it."""

from __future__ import annotations

from collections.abc import Sequence

from modelpack.limits import MB
from modelpack.recipe.targets import TargetSpecBase


def rooms(specs: Sequence[TargetSpecBase]) -> list[tuple[str, int]]:
    """(target identity, the most model bytes it can carry) for every target that has such a limit."""
    from modelpack.targets import TARGETS
    from modelpack.targets import catalog as _catalog  # noqa: F401  (registers every target)

    found = []
    for spec in specs:
        room = TARGETS.get(spec.kind).model_room(spec)
        if room is not None:
            found.append((spec.identity(), room))
    return found


def rows(size_bytes: int | None, limits: list[tuple[str, int]]) -> list[dict]:
    """Budget rows `fits <target>`: the model file's MB against what the target can carry."""
    value = None if size_bytes is None else size_bytes / MB
    return [{"name": f"fits {name}", "limit": room / MB, "value": value,
             "passed": size_bytes is not None and size_bytes <= room} for name, room in limits]


def too_big_note(name: str, size_bytes: int, misfits: list[str], fitting: list[tuple[str, int]]) -> str:
    """Why a variant was not selectable, what fits instead, and how the big one could be served."""
    fits = ", ".join(f"{n} ({b / MB:.1f} MB)" for n, b in fitting) or "none of the variants"
    return (f"{name} ({size_bytes / MB:.1f} MB) is larger than {' and '.join(misfits)} can carry "
            f"(a Lambda function and its layers unzip to at most 262.1 MB), so it was not selected; "
            f"variants whose model file fits (the runtime beside it is checked when the target is built): {fits}. "
            f"To serve {name} on Lambda, add a `lambda-image` target (images up to 10 GB) "
            "or give lambda-function `model_source: s3://BUCKET/KEY` (the model is downloaded at cold start).")
