"""Conformance suite: which models modelpack builds, converts and serves.

    python benchmarks/zoo.py                    # every model in benchmarks/zoo_models.py (about 30 minutes on 2 cores)
    python benchmarks/zoo.py --quick            # three small models, two variants (what CI runs)
    python benchmarks/zoo.py --models lstm,two-outputs --out /tmp/zoo --docs

For each model (random weights, small inputs, generated labelled data) it writes a recipe with a
`lambda-layer` + `lambda-function` target and small measurement settings, runs `modelpack build` in a
subprocess, and records one cell per variant: ok with fidelity, size and latency, or the exact one-line
reason it failed. When the build succeeded it sends one real sample through the generated Lambda handler
(`modelpack invoke` under the Lambda emulator). Writes benchmarks/results/zoo.json (or --out) and a markdown
table; --docs puts the table into docs/models.md between the zoo markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from zoo_models import catalog  # noqa: E402

QUICK = ("two-outputs", "conv1d-varlen")  # regression models are built by the task tests already
QUICK_VARIANTS = ("tflite-fp32", "onnx-fp32")
VARIANTS = ("tflite-fp32", "tflite-dynamic", "tflite-int8", "tflite-16x8", "onnx-fp32", "onnx-int8")
MEASURE = {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}
START, END = "<!-- zoo:start -->", "<!-- zoo:end -->"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}


def modelpack_cmd() -> list[str]:
    return [sys.executable, "-m", "modelpack"]


def host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def one_line(text: str, limit: int = 300) -> str:
    """The line that says what went wrong: modelpack's own error line, else the last non-empty line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith(("error:", "internal error:"))]
    return (said[-1] if said else (lines[-1] if lines else "no output"))[:limit]


def write_recipe(name: str, folder: Path, spec: dict, variants: tuple[str, ...]) -> Path:
    recipe = {
        "name": name, "model": {"path": spec["model"]},
        "data": {**spec["data"], "evaluation": 16, "calibration": 16},
        "optimize": {"variants": list(variants)}, "measure": MEASURE,
        "targets": [{"kind": "lambda-layer", "python": host_python()},
                    {"kind": "lambda-function", "max_batch": 8}],
    }
    for key in ("task", "task_output"):
        if key in spec:
            recipe[key] = spec[key]
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def first_sample(folder: Path, spec: dict) -> dict:
    """One real sample from the model's own data, as a TF Serving columnar request."""
    names = spec["data"].get("inputs", "x")
    names = [names] if isinstance(names, str) else names
    with np.load(folder / spec["data"]["path"]) as npz:
        return {"inputs": {n: npz[n][:1].tolist() for n in names}} if len(names) > 1 else {"inputs": npz[names[0]][:1].tolist()}


def serve(dist: Path, event: dict, folder: Path) -> dict:
    """Send one sample through the built Lambda layer and function under the emulator."""
    path = folder / "event.json"
    path.write_text(json.dumps(event))
    proc = subprocess.run([*modelpack_cmd(), "invoke", str(dist), "--event", str(path)], capture_output=True,
                          text=True, env=ENV, timeout=600, check=False)
    if proc.returncode != 0:
        return {"served": False, "reason": one_line(proc.stderr or proc.stdout)}
    body = proc.stdout.split("\n", 1)[1] if "\n" in proc.stdout else ""
    try:
        answer = json.loads(body)
    except ValueError:
        return {"served": False, "reason": f"invoke printed no JSON answer: {one_line(proc.stdout)}"}
    if "predictions" in answer or "outputs" in answer:
        return {"served": True, "reason": None, "format": "outputs" if "outputs" in answer else "predictions"}
    return {"served": False, "reason": f"the handler answered {json.dumps(answer)[:200]}"}


def cells(report: dict, variants: tuple[str, ...]) -> list[dict]:
    rows = {v["name"]: v for v in report.get("variants", [])}
    out = []
    for name in variants:
        v = rows.get(name)
        if v is None:
            out.append({"variant": name, "ok": False, "reason": "not in the report"})
        elif v["status"] != "ok":
            out.append({"variant": name, "ok": False, "reason": one_line(v.get("error") or "failed")})
        else:
            fid = v.get("fidelity") or {}
            out.append({"variant": name, "ok": True, "reason": None, "agreement": fid.get("agreement"),
                        "max_abs_err": fid.get("max_abs_err"), "size_bytes": v.get("size_bytes"),
                        "p50_ms": (v.get("latency_ms") or {}).get("p50"), "accuracy": v.get("accuracy"),
                        "outputs": len(fid.get("outputs") or []) or 1})
    return out


def run_model(name: str, out: Path, variants: tuple[str, ...], cache: Path) -> dict:
    folder = out / "models" / name
    framework, arch = catalog()[name]
    record: dict = {"model": name, "framework": framework, "architecture": arch}
    t0 = time.perf_counter()
    made = subprocess.run([sys.executable, str(HERE / "zoo_models.py"), name, str(folder)], capture_output=True,
                          text=True, env=ENV, timeout=1800, check=False)
    if made.returncode != 0:
        record.update(build_exit=None, reason=f"could not create the model: {one_line(made.stderr)}", cells=[],
                      served=False, serve_reason="not built", seconds=round(time.perf_counter() - t0, 1))
        return record
    spec = json.loads((folder / "zoo.json").read_text())
    recipe = write_recipe(name, folder, spec, variants)
    dist = folder / "dist"
    proc = subprocess.run([*modelpack_cmd(), "build", str(recipe), "--out", str(dist), "--cache-dir", str(cache)],
                          capture_output=True, text=True, env=ENV, timeout=3600, check=False)
    record["build_exit"] = proc.returncode
    record["reason"] = None if proc.returncode in (0, 1) else one_line(proc.stderr + proc.stdout)
    report = json.loads((dist / "report.json").read_text()) if (dist / "report.json").exists() else {}
    record["selected"] = report.get("selected")
    record["cells"] = cells(report, variants) if report else [
        {"variant": v, "ok": False, "reason": record["reason"]} for v in variants]
    if proc.returncode == 0 and report.get("selected"):
        served = serve(dist, first_sample(folder, spec), folder)
        record.update(served=served["served"], serve_reason=served["reason"], serve_format=served.get("format"))
    else:
        record.update(served=False, serve_reason="not built" if proc.returncode else "no variant selected")
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def _fmt(cell: dict) -> str:
    if not cell["ok"]:
        return "✗ " + cell["reason"].replace("|", "\\|")[:120]
    agree = "" if cell["agreement"] is None else f"agree {cell['agreement']:.2f}, "
    err = cell["max_abs_err"]
    return (f"✓ {agree}err {err:.1e}, {cell['size_bytes'] / 1e6:.3g} MB, {cell['p50_ms']:.3g} ms"
            if err is not None and cell["size_bytes"] and cell["p50_ms"] is not None else "✓")


def table(results: dict) -> str:
    variants = results["variants"]
    lines = ["| model | framework | build | " + " | ".join(variants) + " | served by the Lambda handler |",
             "|---|---|---|" + "---|" * len(variants) + "---|"]
    for r in results["models"]:
        build = "ok" if r.get("build_exit") == 0 else f"exit {r.get('build_exit')}: {(r.get('reason') or '')[:100]}"
        by = {c["variant"]: c for c in r["cells"]}
        row = [_fmt(by[v]) if v in by else "–" for v in variants]
        served = "yes" if r["served"] else f"no ({(r.get('serve_reason') or '')[:80]})"
        lines.append(f"| {r['model']} | {r['framework']} | {build.replace('|', '/')} | " + " | ".join(row)
                     + f" | {served.replace('|', '/')} |")
    ok = sum(c["ok"] for r in results["models"] for c in r["cells"])
    total = sum(len(r["cells"]) for r in results["models"])
    lines.append("")
    if any(v not in {c["variant"] for c in r["cells"]} for r in results["models"] for v in variants):
        lines.append("– : a variant not run for that model (its row is from a run before the column was added).")
        lines.append("")
    lines.append(f"{ok} of {total} cells ok; {sum(r['served'] for r in results['models'])} of "
                 f"{len(results['models'])} models served a real sample through the generated handler. "
                 f"Random weights, generated data; {results['machine']}, {results['date']}.")
    return "\n".join(lines)


def finite(value):
    """JSON-safe copy: non-finite floats (an infinite error) become null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def write_readme(text: str, readme: Path) -> None:
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} / {END} markers")
    head, rest = content.split(START, 1)
    readme.write_text(head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated model names (default: all); see zoo_models.catalog()")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)} with {', '.join(QUICK_VARIANTS)}")
    parser.add_argument("--variants", help=f"comma-separated variants (default: {','.join(VARIANTS)})")
    parser.add_argument("--jobs", type=int, default=1, help="builds at once (the machine is usually shared: 1)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for zoo.json and zoo.md")
    parser.add_argument("--work", type=Path, help="folder for the models, builds and cache (default: a new temp dir)")
    parser.add_argument("--docs", "--readme", dest="docs", action="store_true",
                        help="write the table into docs/models.md")
    parser.add_argument("--update", action="store_true",
                        help="re-run only --models and replace their rows in the existing OUT/zoo.json")
    args = parser.parse_args(argv)
    known = catalog()
    names = list(QUICK) if args.quick else (args.models.split(",") if args.models else list(known))
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    variants = tuple(args.variants.split(",")) if args.variants else (QUICK_VARIANTS if args.quick else VARIANTS)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="modelpack-zoo-"))
    cache = work / "cache"  # shared: each runtime's layer tree is installed once for every model
    print(f"models and builds in {work}", flush=True)

    def one(name: str) -> dict:
        result = run_model(name, work, variants, cache)
        ok = sum(c["ok"] for c in result["cells"])
        print(f"{name}: build exit {result['build_exit']}, {ok}/{len(result['cells'])} cells ok, "
              f"served {result['served']} ({result['seconds']} s)", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        models = list(pool.map(one, names))
    if args.update and (args.out / "zoo.json").exists():
        # Keep the other models' rows from the earlier run, in catalog order; the rows re-run replace theirs.
        fresh = {m["model"]: m for m in models}
        earlier = {m["model"]: m for m in json.loads((args.out / "zoo.json").read_text())["models"]}
        merged = {**earlier, **fresh}
        models = [merged[n] for n in known if n in merged]
    models = json.loads(json.dumps(models).replace(f"{work}/models/", ""))  # no machine paths in the results
    results = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}", "variants": list(variants), "models": models}
    (args.out / "zoo.json").write_text(json.dumps(finite(results), indent=1, allow_nan=False) + "\n")
    text = table(results)
    (args.out / "zoo.md").write_text(text + "\n")
    print(text)
    if args.docs:
        write_readme(text, ROOT / "docs" / "models.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
