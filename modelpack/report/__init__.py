"""The build report and everything drawn from it: the typed records stages pass on (`records`), the report
itself (`build_report`, whose JSON form report.json is a versioned contract described by schema.json), its
renderings (report.md in `markdown`, report.html in `html`, charts in `charts`, shared rows in `rows`) and the
"Next steps" a build prints (`next_steps`).

The renderers take exactly what report.json contains (a dict), so they work on a report read back from disk
as well as on one just built.
"""
