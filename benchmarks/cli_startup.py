"""How long `modelpack --help` and `modelpack validate` take: they must stay fast (no TensorFlow import).

Run: python benchmarks/cli_startup.py [--runs N]
Prints a table and writes benchmarks/results/cli-startup-<host>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_command(cmd: list[str], runs: int) -> dict:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    exe = shutil.which("modelpack", path=str(Path(sys.executable).parent)) or "modelpack"
    recipe = str(ROOT / "recipes" / "digits" / "recipe.yaml")
    results = {
        "modelpack --help": time_command([exe, "--help"], args.runs),
        "modelpack validate digits": time_command([exe, "validate", recipe], args.runs),
        "python -c 'import tensorflow' (for scale)": time_command([sys.executable, "-c", "import tensorflow"], 3),
    }
    print("| command | median ms | min ms | max ms | runs |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['median_ms']:.0f} | {r['min_ms']:.0f} | {r['max_ms']:.0f} | {r['runs']} |")
    out = ROOT / "benchmarks" / "results" / f"cli-startup-{platform.node() or 'host'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
