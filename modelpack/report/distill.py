"""The report's distillation section as rows and a chart's numbers: the model (teacher) beside its distilled
student — parameters, Keras file size, accuracy, agreement with the model — and, per variant, V beside
distilled-V; the training curve (loss and held-out loss per epoch)."""

from __future__ import annotations

from modelpack.report import rows as R

HEADERS = ["", "model", "distilled student"]
PAIR_HEADERS = ["variant", "model: size MB", "student: size MB", "model: accuracy", "student: accuracy",
                "student: agreement with the model"]


def _mb(n: int | None) -> str:
    return R.fmt(None if n is None else n / 1e6, "{:.3f}")


def side_rows(d: dict) -> list[list[str]]:
    """Teacher and student as Keras models, side by side."""
    t, s = d["teacher"], d["student"]
    ratio = f" ({t['params'] / s['params']:.1f}x fewer)" if s["params"] else ""
    return [["parameters", f"{t['params']:,}", f"{s['params']:,}{ratio}"],
            ["Keras file, MB", _mb(t["size_bytes"]), _mb(s["size_bytes"])],
            ["accuracy", R.fmt(t["accuracy"], "{:.4f}"), R.fmt(s["accuracy"], "{:.4f}")],
            ["agreement with the model", "1", R.fmt(s.get("agreement"), "{:.4f}")]]


def pair_rows(d: dict, doc: dict) -> list[list[str]]:
    """Each requested variant beside the same variant built from the student."""
    by_name = {v["name"]: v for v in doc.get("variants", [])}
    out = []
    for plain, student in d["variants"].items():
        a, b = by_name.get(plain) or {}, by_name.get(student) or {}
        out.append([f"{plain} / {student}", _mb(a.get("size_bytes")), _mb(b.get("size_bytes")),
                    R.fmt(a.get("accuracy"), "{:.4f}"), R.fmt(b.get("accuracy"), "{:.4f}"),
                    R.fmt((b.get("fidelity") or {}).get("agreement"), "{:.4f}")])
    return out


def title(d: dict) -> str:
    return (f"Distillation ({d['how']}, temperature {d['temperature']:g}, alpha {d['alpha']:g}; "
            f"{d['epochs_run']} epoch(s), best {d['best_epoch']}, {d['seconds']:.1f} s)")


def curve_data(doc: dict) -> dict | None:
    """The numbers the training-curve chart plots."""
    d = doc.get("distill")
    if not d or not d.get("curve"):
        return None
    return {"title": doc["name"], "curve": d["curve"], "best": d["best_epoch"]}
