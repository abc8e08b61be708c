"""The build report: report.json is its JSON form, a contract other tools read; modelpack.report draws report.md,
report.html and the charts from that JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from modelpack.report.records import VariantRecord

# The version of report.json's shape (modelpack/report/schema.json describes it). A reader checks it; a change
# that renames or removes a key bumps it, a new optional key does not.
SCHEMA_VERSION = "1"
SCHEMA_FILE = Path(__file__).with_name("schema.json")


@dataclass
class BuildReport:
    """Everything a build measured and wrote. Field names of the JSON form are a stable contract."""

    modelpack_version: str
    recipe: str
    name: str
    model: dict
    data: dict
    variants: list[VariantRecord] = field(default_factory=list)
    budgets: list[dict] = field(default_factory=list)
    selected: str | None = None
    selection_reason: str = ""
    closest: str | None = None
    artifacts: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measure: dict = field(default_factory=dict)
    prune: dict | None = None
    distill: dict | None = None  # teacher against distilled student, the training curve
    memory: dict | None = None
    search: list[dict] = field(default_factory=list)
    split: dict | None = None
    task: dict | None = None  # name, inferred, why, score (what `accuracy` holds); absent in older reports
    build: dict | None = None  # peak memory (whole process tree) and seconds of each stage

    @property
    def passed(self) -> bool:
        return self.selected is not None and all(b["passed"] for b in self.budgets)

    def variant(self, name: str) -> VariantRecord | None:
        return next((v for v in self.variants if v.name == name), None)

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "variants"}
        d = asdict(BuildReport(**d))  # deep copies of the plain sections
        d["variants"] = [v.to_json() for v in self.variants]
        d["passed"] = self.passed
        d["schema_version"] = SCHEMA_VERSION
        d["steps"] = []  # always empty; schema 1 keeps the key for the readers that expect it
        if d["distill"] is None:  # an optional section: only builds that distil have it
            del d["distill"]
        return d

    @classmethod
    def from_json(cls, d: dict) -> BuildReport:
        """A report.json read back (`passed`, `schema_version` and `steps` are derived, not stored)."""
        known = {f.name for f in fields(cls)}
        report = cls(**{k: v for k, v in d.items() if k in known and k != "variants"})
        report.variants = [VariantRecord.from_json(v) for v in d.get("variants", [])]
        return report

