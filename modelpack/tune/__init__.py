"""`modelpack tune`: recommendations for a deployed function's recipe settings from what it really did.

sources.py reads CloudWatch (boto3) or an exported log file into `Observations`; dist.py reads what the
build measured; recommend.py (with memory_size.py and concurrency.py) turns both into `Recommendation`s
with their evidence; write.py puts them into the recipe; render.py prints them.
"""

from __future__ import annotations

from pathlib import Path

from modelpack.tune.recommend import TuneResult


def tune(dist: Path, function: str, since: str = "7d", region: str | None = None,
         from_logs: Path | None = None) -> TuneResult:
    from modelpack.tune import sources
    from modelpack.tune.dist import read_build
    from modelpack.tune.recommend import recommend_all

    facts = read_build(dist)
    window = sources.parse_since(since)
    obs = sources.from_log_file(from_logs) if from_logs else sources.from_cloudwatch(function, window, region)
    return recommend_all(obs, facts, function)


def changes(result: TuneResult) -> dict[str, int | str | None]:
    """The recipe fields `--write` sets: the recommendations that change something and can be written."""
    return {r.setting: r.recommended for r in result.recommendations if r.changes}
