"""Choose where to split a model among its legal cut points (plain Python; the points come from steps/split.py).

Part sizes are parameter bytes. `parts: N` finds the smallest achievable largest part, then, among the plans
whose largest part is within BALANCE_SLACK of it, the one whose crossing tensors are smallest (they become
request payloads). `max_part_mb: X` uses the fewest parts that keep every part under X, chosen the same way.
`at:` takes the named layers, and refuses a name that is not a legal cut with the nearest legal ones.
"""

from __future__ import annotations

from modelpack.errors import InputError
from modelpack.limits import MB

BALANCE_SLACK = 0.05
INF = float("inf")


def _sizes(points: list[dict]) -> tuple[int, list[dict]]:
    total = points[0]["bytes_before"] + points[0]["bytes_after"] if points else 0
    return total, [p for p in points if p["legal"]]


def _part(legal: list[dict], total: int, a: int | None, b: int | None) -> int:
    """Bytes between cut a and cut b (indexes into legal; None = model start / end)."""
    start = 0 if a is None else legal[a]["bytes_before"]
    end = total if b is None else legal[b]["bytes_before"]
    return end - start


def _cross(legal: list[dict], i: int) -> int:
    return legal[i]["tensor_bytes"] if legal[i]["tensor_bytes"] is not None else 1 << 40


def _min_max(legal: list[dict], total: int, cuts: int) -> float:
    m = len(legal)
    best = [[INF] * m for _ in range(cuts + 1)]
    for i in range(m):
        best[1][i] = _part(legal, total, None, i)
    for j in range(2, cuts + 1):
        for i in range(m):
            best[j][i] = min((max(best[j - 1][k], _part(legal, total, k, i)) for k in range(i)), default=INF)
    return min((max(best[cuts][i], _part(legal, total, i, None)) for i in range(m)), default=INF)


def _min_payload(legal: list[dict], total: int, cuts: int, limit: float) -> list[int] | None:
    """Cut indexes with the smallest summed crossing bytes such that every part is <= limit."""
    m = len(legal)
    cost = [[INF] * m for _ in range(cuts + 1)]
    back: list[list[int | None]] = [[None] * m for _ in range(cuts + 1)]
    for i in range(m):
        if _part(legal, total, None, i) <= limit:
            cost[1][i] = _cross(legal, i)
    for j in range(2, cuts + 1):
        for i in range(m):
            for k in range(i):
                if cost[j - 1][k] < INF and _part(legal, total, k, i) <= limit:
                    c = cost[j - 1][k] + _cross(legal, i)
                    if c < cost[j][i]:
                        cost[j][i], back[j][i] = c, k
    ends = [i for i in range(m) if cost[cuts][i] < INF and _part(legal, total, i, None) <= limit]
    if not ends:
        return None
    i: int | None = min(ends, key=lambda e: (cost[cuts][e], e))
    chosen = []
    for j in range(cuts, 0, -1):
        chosen.append(i)
        i = back[j][i]  # type: ignore[index]
    return sorted(chosen)  # type: ignore[arg-type]


def _balanced(legal: list[dict], total: int, parts: int, limit: float = INF) -> list[str] | None:
    best = _min_max(legal, total, parts - 1)
    if best > limit:
        return None
    chosen = _min_payload(legal, total, parts - 1, min(limit, best * (1 + BALANCE_SLACK)))
    return None if chosen is None else [legal[i]["after"] for i in chosen]


def choose(points: list[dict], spec, origin: str) -> list[str]:
    """The layer names to cut after, in model order."""
    total, legal = _sizes(points)
    where = f"{origin}: optimize.split"
    if not legal:
        raise InputError(f"{where}: the model has no legal cut point (every position is spanned by a skip "
                         "connection or the model has too few layers); remove optimize.split.")
    if spec.at is not None:
        return _check_at(points, spec.at, where)
    if spec.parts is not None:
        if spec.parts - 1 > len(legal):
            raise InputError(f"{where}.parts: {spec.parts} parts need {spec.parts - 1} cuts but the model has "
                             f"{len(legal)} legal cut point(s) ({', '.join(p['after'] for p in legal)}); ask for "
                             f"at most {len(legal) + 1} parts.")
        chosen = _balanced(legal, total, spec.parts)
        assert chosen is not None
        return chosen
    limit = spec.max_part_mb * MB
    for parts in range(1, len(legal) + 2):
        if parts == 1:
            if total <= limit:
                raise InputError(f"{where}.max_part_mb: the whole model ({total / MB:.3f} MB of parameters) already "
                                 f"fits {spec.max_part_mb:g} MB; no split is needed, remove optimize.split.")
            continue
        chosen = _balanced(legal, total, parts, limit)
        if chosen is not None:
            return chosen
    biggest = max(range(len(legal) + 1), key=lambda i: _part(legal, total, i - 1 if i else None,
                                                              i if i < len(legal) else None))
    lo = "the input" if biggest == 0 else f"'{legal[biggest - 1]['after']}'"
    hi = "the output" if biggest == len(legal) else f"'{legal[biggest]['after']}'"
    size = _part(legal, total, biggest - 1 if biggest else None, biggest if biggest < len(legal) else None)
    raise InputError(f"{where}.max_part_mb: the layers between {lo} and {hi} hold {size / MB:.3f} MB with no legal "
                     f"cut between them, more than {spec.max_part_mb:g} MB; raise max_part_mb or use parts: N.")


def _check_at(points: list[dict], names: list[str], where: str) -> list[str]:
    by_name = {p["after"]: p for p in points}
    legal = [p for p in points if p["legal"]]
    indexes = []
    for n, name in enumerate(names):
        p = by_name.get(name)
        if p is None:
            raise InputError(f"{where}.at[{n}]: the model has no layer '{name}' to cut after (the first and last "
                             f"layers cannot be cut after); legal cut points: {', '.join(q['after'] for q in legal)}.")
        if not p["legal"]:
            before = [q["after"] for q in legal if q["index"] < p["index"]][-1:]
            after = [q["after"] for q in legal if q["index"] > p["index"]][:1]
            nearest = " or ".join(f"'{x}'" for x in before + after) or "none"
            raise InputError(f"{where}.at[{n}]: cannot cut after '{name}': {p['why']}. The nearest legal cuts are "
                             f"{nearest}.")
        indexes.append(p["index"])
    if indexes != sorted(set(indexes)):
        raise InputError(f"{where}.at: list each cut once, in model order ({', '.join(sorted(names, key=lambda x: by_name[x]['index']))}).")
    return list(names)
