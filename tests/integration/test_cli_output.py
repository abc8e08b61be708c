"""What a build prints, as users run it: `modelpack -q build` means `build -q`, the live progress line on a
100-column terminal keeps its counts and times whole, and the one default cache is printed by the build and
found by `cache info` from any folder. Rebuilds of a copy of the session's digits build (its cache warm)."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.helpers.builds import copy_dist

pytestmark = pytest.mark.slow
STYLE = re.compile(r"\x1b\[[0-9;]*m")  # colours and dim text: inside a line
CURSOR = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b[()][A-Z0-9]")  # cursor moves and erasures: between lines


def run_in_terminal(args: list[str], env: dict, columns: int = 100, timeout_s: float = 600) -> tuple[int, str]:
    """Run `python -m modelpack ARGS` with stdout and stderr on a pseudo-terminal `columns` wide."""
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "modelpack", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env={**env, "COLUMNS": str(columns), "TERM": "xterm"}, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_quiet_progress_and_the_default_cache(digits_dist, tmp_path, monkeypatch):
    dist = copy_dist(digits_dist, tmp_path / "copy", cache=False)
    xdg = tmp_path / "xdg"
    shutil.copytree(digits_dist.cache, xdg / "modelpack" / "builds", symlinks=True)
    monkeypatch.delenv("MODELPACK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    default = xdg / "modelpack" / "builds"

    quiet = CliRunner().invoke(cli, ["-q", "build", str(dist.recipe), "--out", str(dist.out)])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout.splitlines() == [quiet.stdout.splitlines()[0]] and quiet.stdout.startswith("built ")
    assert quiet.stderr == ""

    code, screen = run_in_terminal(["build", str(dist.recipe), "--out", str(dist.out)], dict(os.environ))
    assert code == 0, screen[-3000:]
    segments = [s for s in re.split(r"[\r\n]", CURSOR.sub("\n", STYLE.sub("", screen))) if s.strip()]
    live = [s for s in segments if " left ~ " in s]
    assert live, screen[-3000:]
    whole = re.compile(r"\b\d{1,2}/11 \d+:\d\d:\d\d left ~ (\d+:\d\d:\d\d|-:--:--)$")
    assert all(whole.search(s.rstrip()) for s in live), [s for s in live if not whole.search(s.rstrip())][:3]
    assert all(len(s.rstrip()) <= 100 for s in live)
    assert f"cache: {default}" in screen and "Next steps" in screen

    monkeypatch.chdir(tmp_path)  # another folder than the recipe's: the same cache
    info = CliRunner().invoke(cli, ["cache", "info"])
    assert info.exit_code == 0 and info.stdout.startswith(f"{default}: "), info.output
    assert int(re.search(r": (\d+) entries", info.stdout).group(1)) > 0
