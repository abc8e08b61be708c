"""`modelpack tune`: recommendations for a deployed function's recipe settings from what it really did.

sources.py reads CloudWatch (boto3) or an exported log file into `Observations`; dist.py reads what the
build measured; recommend.py (with memory_size.py and concurrency.py) turns both into `Recommendation`s
with their evidence; write.py puts them into the recipe; render.py prints them.
"""

from __future__ import annotations

from pathlib import Path

from modelpack.tune.recommend import TuneResult


def tune(dist: Path, function: str | None, since: str = "7d", region: str | None = None,
         from_logs: Path | None = None) -> TuneResult:
    """Recommendations for the function deployed from `dist`; without `function`, its name comes from the logs'
    log group, the dist's publish record, or the build's name (what `modelpack publish` names it)."""
    from modelpack.tune import logfile, sources
    from modelpack.tune.dist import publish_record_function, read_build
    from modelpack.tune.recommend import recommend_all

    facts = read_build(dist)
    window = sources.parse_since(since)
    named = None
    if from_logs:
        obs = logfile.from_log_file(from_logs, window)
        if function is None and obs.log_group and obs.log_group.startswith("/aws/lambda/"):
            function, named = obs.log_group.removeprefix("/aws/lambda/"), "the log group in the file"
    if function is None and (recorded := publish_record_function(dist)):
        function, named = recorded, f"{dist}/publish.json (modelpack publish's record)"
    if function is None:
        function, named = facts.name, "the build's name, which modelpack publish gives the function"
    if not from_logs:
        obs = sources.from_cloudwatch(function, window, region)
    return recommend_all(obs, facts, function, named)


def changes(result: TuneResult) -> dict[str, int | str | None]:
    """The recipe fields `--write` sets: the recommendations that change something and can be written."""
    return {r.setting: r.recommended for r in result.recommendations if r.changes}
