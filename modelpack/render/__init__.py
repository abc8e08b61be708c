"""Report rendering: report.md, report.html and the charts, each drawn from the report's JSON document.

The renderers take exactly what report.json contains (a dict), so they work on a report read back from disk
as well as on one just built, and do not depend on how the build keeps its report in memory.
"""
