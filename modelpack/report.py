"""The build report: report.json is its JSON form, a contract other tools read; modelpack.render draws report.md,
report.html and the charts from that JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class BuildReport:
    """Everything a build measured and wrote. Field names of the JSON form are a stable contract."""

    modelpack_version: str
    recipe: str
    name: str
    model: dict
    data: dict
    variants: list[dict] = field(default_factory=list)
    budgets: list[dict] = field(default_factory=list)
    selected: str | None = None
    selection_reason: str = ""
    closest: str | None = None
    artifacts: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measure: dict = field(default_factory=dict)
    prune: dict | None = None
    memory: dict | None = None
    search: list[dict] = field(default_factory=list)
    split: dict | None = None

    @property
    def passed(self) -> bool:
        return self.selected is not None and all(b["passed"] for b in self.budgets)

    def variant(self, name: str) -> dict | None:
        return next((v for v in self.variants if v["name"] == name), None)

    def to_json(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d
