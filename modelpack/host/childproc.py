"""How modelpack talks to the fresh processes it starts: a scrubbed environment, pip, and one stdout protocol.

A child reports its result as one line `MARKER <json>` on stdout (anything else it prints is ignored), so
warnings, logging and third-party chatter never break the parse. Children that cannot import modelpack
(a handler run with the target's interpreter, a container) print the line from code `write_source` returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

# The variables that would let the build's own interpreter leak into a child meant to see only a target tree.
_LEAKY = ("PYTHON", "VIRTUAL_ENV")


def scrubbed_env(path: list[str] | None = None, **extra: str) -> dict[str, str]:
    """os.environ without PYTHON*/VIRTUAL_ENV, then `path` as PYTHONPATH, no bytecode writing, no user
    site-packages and one BLAS thread, then `extra` (which wins)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY)}
    if path:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def write(marker: str, value: Any, stream=None) -> None:
    """Print `value` as the marker line (for children that can import modelpack)."""
    print(f"{marker} {json.dumps(value)}", file=stream or sys.stdout, flush=True)


def write_source(marker: str, expression: str) -> str:
    """One line of Python that prints `expression` as the marker line; the script must `import json`."""
    return f"print({marker + ' '!r} + json.dumps({expression}), flush=True)"


def read(output: str, marker: str, last: bool = False) -> Any:
    """The value of the first (or last) `marker` line in `output`, None when there is none.

    The marker may stand after a prefix (Azure's worker routes print() through logging as "INFO: ...")."""
    tag = marker + " "
    lines = [ln for ln in output.splitlines() if tag in ln]
    if not lines:
        return None
    line = lines[-1] if last else lines[0]
    return json.loads(line.split(tag, 1)[1])


def pip(args: list[str], interpreter: str | None = None) -> subprocess.CompletedProcess:
    """Run `interpreter -m pip ARGS` (the build's own Python by default), capturing text output, never raising."""
    return subprocess.run([interpreter or sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, check=False)


def pip_tail(proc: subprocess.CompletedProcess, chars: int = 300) -> str:
    """The end of what a failed pip run said on stderr, short enough for one error paragraph."""
    return proc.stderr.strip()[-chars:]
