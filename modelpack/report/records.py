"""Typed records the build passes between stages: a step's result, a variant's measurements, an INT8 setting.

Each record's `to_json()` is the form report.json has always had (its field names are a contract); `from_json()`
reads that form back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelpack.errors import StepError


@dataclass
class StepResult:
    """What one step job produced: its details, or why it failed (`error_type` names the exception class).

    `error` is the one-line form reports show (`Type: message`); `message` is the same without the type.
    `dir` is the job's output folder (None when it failed) and `cached` whether it came from the cache.
    """

    ok: bool
    details: dict = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    message: str | None = None
    dir: Path | None = None
    cached: bool = False

    @classmethod
    def from_json(cls, d: dict, dir: Path | str | None = None, cached: bool = False) -> StepResult:
        """A worker's result.json (or its in-memory result); results cached before `message` existed read as
        their `error`."""
        return cls(ok=bool(d.get("ok")), details=d.get("details") or {}, error=d.get("error"),
                   error_type=d.get("error_type"), message=d.get("message", d.get("error")),
                   dir=None if dir is None else Path(dir), cached=cached)

    def is_error(self, error: type[StepError]) -> bool:
        """Whether the step failed with `error`, a StepError class (the worker records its class name)."""
        return not self.ok and self.error_type == error.__name__


@dataclass(frozen=True)
class Int8Setting:
    """How an INT8 variant is calibrated: one object from the recipe through the steps, the search and the report.

    `calibration_method` is None for TFLite, whose converter has no choice. The report keeps its two historical
    spellings: a plain variant's details say `method`, a search trial says `calibration`. `activations` is
    "int16" for the TFLite search's 16x8 trial (int16 activations, int8 weights); a TFLite trial names it.
    """

    calibration_method: str | None
    per_channel: bool
    activations: str = "int8"

    @classmethod
    def from_recipe(cls, int8: Any) -> Int8Setting:
        """The recipe's `optimize.int8` section."""
        return cls(int8.calibration_method, int8.per_channel)

    def to_options(self) -> dict:
        """The step options (and the plain variant's report details)."""
        return {"method": self.calibration_method, "per_channel": self.per_channel}

    @classmethod
    def from_options(cls, d: dict) -> Int8Setting:
        return cls(d.get("method"), d["per_channel"])

    def to_trial(self) -> dict:
        """The keys a search trial shows; TFLite settings have no calibration method."""
        if self.calibration_method is None:
            return {"per_channel": self.per_channel, "activations": self.activations}
        return {"calibration": self.calibration_method, "per_channel": self.per_channel}

    @classmethod
    def from_trial(cls, d: dict) -> Int8Setting:
        return cls(d.get("calibration"), d["per_channel"], d.get("activations", "int8"))


@dataclass(frozen=True)
class ArtifactRecord:
    """A file a target wrote, as report.json's `artifacts` lists it (`path` relative to the output folder)."""

    target: str
    path: str
    sha256: str
    size_bytes: int
    unzipped_bytes: int | None = None
    details: dict = field(default_factory=dict)  # what the target reports about it; absent from JSON when empty

    def to_json(self) -> dict:
        out = {"target": self.target, "path": self.path, "sha256": self.sha256, "size_bytes": self.size_bytes,
               "unzipped_bytes": self.unzipped_bytes}
        return {**out, "details": self.details} if self.details else out

    @classmethod
    def from_json(cls, d: dict) -> ArtifactRecord:
        return cls(d["target"], d["path"], d["sha256"], d["size_bytes"], d.get("unzipped_bytes"), d.get("details") or {})

    @classmethod
    def read_all(cls, report_json: Path) -> list[ArtifactRecord]:
        """The artifacts a build's report.json lists."""
        return [cls.from_json(a) for a in dist_report(report_json.parent)["artifacts"]]


def dist_report(dist: Path) -> dict:
    """The report.json of a build's output folder; a folder that is not one (no report.json, or one a build did
    not write) is the user's mistake, said in one sentence (exit 2), never a traceback."""
    from modelpack.errors import UsageError

    try:
        report = json.loads((dist / "report.json").read_text())
    except FileNotFoundError:
        why = "has no report.json"
    except (OSError, ValueError) as exc:
        why = f"has a report.json that cannot be read ({exc})"
    else:
        if isinstance(report, dict) and isinstance(report.get("artifacts"), list):
            return report
        why = "has a report.json without the artifacts list a build writes"
    raise UsageError(f"{dist} {why}, so it is not the output folder of a modelpack build. Point the command at "
                     "the folder `modelpack build RECIPE --out DIST` wrote (dist/<name> by default).")


@dataclass
class Selection:
    """The chosen variant (or none, and the closest one), why, and the budget rows of whichever is named."""

    selected: str | None
    reason: str
    closest: str | None
    budgets: list[dict]
    notes: list[str] = field(default_factory=list)  # for the report: what was passed over, and why


def empty_fidelity() -> dict:
    return {"agreement": None, "max_abs_err": None, "mean_abs_err": None}


# Keys report.json shows only when set (a failed variant has no measurement, Keras no path).
OPTIONAL = ("measurement", "accuracy_top_k", "regression", "path")
# Fields that never reach report.json.
INTERNAL = ("file",)


@dataclass
class VariantRecord:
    """One variant as measured and judged; `to_json()` is its entry in report.json's `variants`.

    Renderers may read it like the JSON mapping (`v["latency_ms"]`, `v.get("accuracy")`); the stages set
    attributes.
    """

    name: str
    format: str
    quantization: str
    pruned: bool = False
    status: str = "ok"
    error: str | None = None
    cached: bool = False
    size_bytes: int | None = None
    zipped_bytes: int | None = None
    accuracy: float | None = None
    accuracy_drop: float | None = None
    fidelity: dict = field(default_factory=empty_fidelity)
    latency_ms: dict | None = None  # p50, p90, p95, p99, mean, ...
    cold_start_ms: dict | None = None  # p50, import, load, first_inference, runs
    peak_rss_mb: float | None = None
    details: dict = field(default_factory=dict)
    budgets: list[dict] = field(default_factory=list)
    budgets_passed: bool = False
    measurement: str | None = None  # "measured" or "reused from cache"
    accuracy_top_k: dict | None = None
    regression: dict | None = None
    path: str | None = None  # the copy in the output folder, relative to it
    file: Path | None = None  # the model file measured, in the cache or work folder

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50_ms(self) -> float | None:
        return (self.latency_ms or {}).get("p50")

    def fail(self, error: str | None) -> None:
        self.status, self.error = "failed", error

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in INTERNAL or (f.name in OPTIONAL and value is None):
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, d: dict) -> VariantRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    # Read access in the report's JSON form, for the renderers and tools that take report.json as a mapping.
    def __getitem__(self, key: str) -> Any:
        if key in INTERNAL or key not in self.__dataclass_fields__:
            raise KeyError(key)
        value = getattr(self, key)
        if key in OPTIONAL and value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING


_MISSING = object()
